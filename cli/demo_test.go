package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// the tls_resume global option and app, once they exist
	_ "github.com/tlsresume/caddy-tlsresume/caddyfile"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	_ "github.com/tlsresume/caddy-tlsresume/tlsresume"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

func testDemoOptions(t *testing.T) demoOptions {
	return demoOptions{
		Dir:    filepath.Join(t.TempDir(), "demo data"), // a space, on purpose
		Listen: "127.0.0.1:18443",
		Admin:  "127.0.0.1:12019",
	}
}

func readCert(t *testing.T, path string) (*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		t.Fatalf("%s holds no certificate", path)
	}
	return certs[0], certs[1:]
}

func TestPrepareDemoWritesWorkingPKIAndKEK(t *testing.T) {
	o := testDemoOptions(t)
	f, err := prepareDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Generated {
		t.Error("first run did not report a generated PKI")
	}
	if !filepath.IsAbs(f.Dir) || !strings.HasSuffix(f.Dir, "demo data") {
		t.Errorf("Dir = %q, want the absolute --dir", f.Dir)
	}
	for _, p := range []struct {
		path string
		mode os.FileMode
	}{
		{f.PKI.CA, 0o644}, {f.PKI.ServerCert, 0o644}, {f.PKI.ServerKey, 0o600},
		{f.PKI.ClientACert, 0o644}, {f.PKI.ClientAKey, 0o600},
		{f.PKI.ClientBCert, 0o644}, {f.PKI.ClientBKey, 0o600},
		{f.KEK, 0o600}, {f.Caddyfile, 0o644},
	} {
		st, err := os.Stat(p.path)
		if err != nil {
			t.Errorf("missing %s: %v", p.path, err)
			continue
		}
		if st.Mode().Perm() != p.mode {
			t.Errorf("%s has mode %v, want %v", p.path, st.Mode().Perm(), p.mode)
		}
	}
	if st, err := os.Stat(f.Storage); err != nil || !st.IsDir() {
		t.Errorf("storage directory %s: %v", f.Storage, err)
	}

	kek, err := os.ReadFile(f.KEK)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`\A[A-Za-z0-9+/]{43}=\n\z`).Match(kek) {
		t.Errorf("KEK file holds %q, want keygen's format", kek)
	}

	// The server certificate verifies for localhost and both clients for
	// client authentication, through the intermediate they carry, to ca.pem.
	ca, _ := readCert(t, f.PKI.CA)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, c := range []struct {
		file string
		dns  string
		eku  x509.ExtKeyUsage
	}{
		{f.PKI.ServerCert, "localhost", x509.ExtKeyUsageServerAuth},
		{f.PKI.ClientACert, "", x509.ExtKeyUsageClientAuth},
		{f.PKI.ClientBCert, "", x509.ExtKeyUsageClientAuth},
	} {
		leaf, chain := readCert(t, c.file)
		inter := x509.NewCertPool()
		for _, ic := range chain {
			inter.AddCert(ic)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: c.dns, KeyUsages: []x509.ExtKeyUsage{c.eku}}); err != nil {
			t.Errorf("%s does not verify: %v", c.file, err)
		}
		if left := time.Until(leaf.NotAfter); left < demoValidity-2*time.Hour {
			t.Errorf("%s valid for only %s more", c.file, left)
		}
	}
	a, _ := readCert(t, f.PKI.ClientACert)
	if len(a.URIs) != 1 || a.URIs[0].String() != "spiffe://demo.example.org/ns/payments/sa/api" {
		t.Errorf("client A URIs = %v", a.URIs)
	}
}

func TestPrepareDemoReusesPKIAndKEK(t *testing.T) {
	o := testDemoOptions(t)
	first, err := prepareDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := func(f demoFiles) map[string][]byte {
		m := map[string][]byte{}
		for _, p := range []string{f.PKI.CA, f.PKI.ServerCert, f.PKI.ServerKey, f.PKI.ClientACert, f.PKI.ClientAKey, f.KEK} {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			m[filepath.Base(p)] = b
		}
		return m
	}
	before := snapshot(first)

	o.Listen = "localhost:18444" // flags may change between runs
	second, err := prepareDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	if second.Generated {
		t.Error("second run regenerated a PKI that was still valid")
	}
	after := snapshot(second)
	for name, b := range before {
		if !bytes.Equal(b, after[name]) {
			t.Errorf("%s changed on the second run", name)
		}
	}
	cf, err := os.ReadFile(second.Caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cf), "https://localhost:18444 {") || !strings.Contains(string(cf), "bind localhost") {
		t.Errorf("Caddyfile not rewritten for the new --listen:\n%s", cf)
	}
}

func TestPrepareDemoReplacesExpiringPKI(t *testing.T) {
	o := testDemoOptions(t)
	first, err := prepareDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	oldCA, _ := os.ReadFile(first.PKI.CA)
	// replace client A with a certificate that expires within the hour
	root, err := pki.NewRoot("x", pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := root.IssueClient(pki.Options{CommonName: "short", NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(first.PKI.ClientACert, leaf.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := prepareDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	newCA, _ := os.ReadFile(second.PKI.CA)
	if !second.Generated || bytes.Equal(oldCA, newCA) {
		t.Error("an expiring demo PKI was not replaced")
	}
	// a missing key also means a new PKI
	if err := os.Remove(second.PKI.ServerKey); err != nil {
		t.Fatal(err)
	}
	third, err := prepareDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	if !third.Generated {
		t.Error("a demo PKI without its server key was not replaced")
	}
}

func TestPrepareDemoRefusesForeignKEKFile(t *testing.T) {
	o := testDemoOptions(t)
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	kek := filepath.Join(o.Dir, "kek")
	if err := os.WriteFile(kek, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := prepareDemo(o)
	if err == nil || !strings.Contains(err.Error(), kek) {
		t.Fatalf("prepareDemo with a bad KEK file: err = %v, want one naming %s", err, kek)
	}
	if b, _ := os.ReadFile(kek); string(b) != "not a key\n" {
		t.Error("the existing KEK file was overwritten")
	}
}

func TestPrepareDemoRejectsBadFlags(t *testing.T) {
	for _, c := range []struct {
		listen, admin, want string
	}{
		{"8443", "localhost:2019", "--listen"},
		{"localhost:0", "localhost:2019", "--listen"},
		{"localhost:http", "localhost:2019", "--listen"},
		{"local host:8443", "localhost:2019", "--listen"},
		{"localhost:8443", "2019", "--admin"},
	} {
		o := testDemoOptions(t)
		o.Listen, o.Admin = c.listen, c.admin
		_, err := prepareDemo(o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("listen %q admin %q: err = %v, want one naming %s", c.listen, c.admin, err, c.want)
		}
	}
}

// tlsResumeBlock matches the tls_resume global option block of the demo
// Caddyfile.
var tlsResumeBlock = regexp.MustCompile(`(?s)\n\ttls_resume \{\n.*?\n\t\}\n`)

func TestDemoCaddyfileAdapts(t *testing.T) {
	o := testDemoOptions(t)
	f, err := prepareDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := os.ReadFile(f.Caddyfile)
	if err != nil {
		t.Fatal(err)
	}
	if !tlsResumeBlock.Match(cf) {
		t.Fatalf("demo Caddyfile has no tls_resume block:\n%s", cf)
	}
	wantKEK := "{file." + f.KEK + "}"
	if !strings.Contains(string(cf), `kek "`+wantKEK+`"`) {
		t.Errorf("demo Caddyfile does not read the KEK from %s:\n%s", f.KEK, cf)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")

	// Everything but the tls_resume block is stock Caddy and must adapt to
	// the site the demo promises.
	stock := tlsResumeBlock.ReplaceAll(cf, []byte("\n"))
	out, warn, err := adapter.Adapt(stock, map[string]any{"filename": f.Caddyfile})
	if err != nil {
		t.Fatalf("demo Caddyfile without tls_resume does not adapt: %v\n%s", err, stock)
	}
	for _, w := range warn {
		t.Errorf("adapt warning: %v", w)
	}
	checkDemoJSON(t, out, f)

	// With the plugin's global option registered, the whole file adapts
	// and configures the tls_resume app with the KEK file.
	if _, err := caddy.GetModule("tls_resume"); err != nil {
		t.Logf("tls_resume app not registered yet; full adaptation not checked")
		return
	}
	out, _, err = adapter.Adapt(cf, map[string]any{"filename": f.Caddyfile})
	if err != nil {
		t.Fatalf("demo Caddyfile does not adapt: %v\n%s", err, cf)
	}
	checkDemoJSON(t, out, f)
	var cfg struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	app, ok := cfg.Apps["tls_resume"]
	if !ok {
		t.Fatalf("adapted demo config has no tls_resume app:\n%s", out)
	}
	if !strings.Contains(string(app), wantKEK) {
		t.Errorf("tls_resume app does not carry the KEK placeholder %s: %s", wantKEK, app)
	}
}

func checkDemoJSON(t *testing.T, out []byte, f demoFiles) {
	t.Helper()
	var cfg struct {
		Admin struct {
			Listen string `json:"listen"`
			Config struct {
				Persist *bool `json:"persist"`
			} `json:"config"`
		} `json:"admin"`
		Storage struct {
			Module string `json:"module"`
			Root   string `json:"root"`
		} `json:"storage"`
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Listen   []string `json:"listen"`
					Policies []struct {
						ClientAuth struct {
							Mode      string `json:"mode"`
							TrustPool struct {
								Provider string   `json:"provider"`
								PEMFiles []string `json:"pem_files"`
							} `json:"ca"`
						} `json:"client_authentication"`
					} `json:"tls_connection_policies"`
					Logs json.RawMessage `json:"logs"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if cfg.Admin.Listen != "127.0.0.1:12019" {
		t.Errorf("admin listen = %q", cfg.Admin.Listen)
	}
	if p := cfg.Admin.Config.Persist; p == nil || *p {
		t.Errorf("config persistence not off")
	}
	if cfg.Storage.Module != "file_system" || cfg.Storage.Root != f.Storage {
		t.Errorf("storage = %+v, want file_system at %s", cfg.Storage, f.Storage)
	}
	if len(cfg.Apps.HTTP.Servers) != 1 {
		t.Fatalf("want one HTTP server, got %d:\n%s", len(cfg.Apps.HTTP.Servers), out)
	}
	for name, srv := range cfg.Apps.HTTP.Servers {
		if len(srv.Listen) != 1 || srv.Listen[0] != "127.0.0.1:18443" {
			t.Errorf("server %s listens on %v, want [127.0.0.1:18443]", name, srv.Listen)
		}
		if len(srv.Policies) == 0 {
			t.Fatalf("server %s has no TLS connection policy:\n%s", name, out)
		}
		ca := srv.Policies[0].ClientAuth
		if ca.Mode != "require_and_verify" || ca.TrustPool.Provider != "file" ||
			len(ca.TrustPool.PEMFiles) != 1 || ca.TrustPool.PEMFiles[0] != f.PKI.CA {
			t.Errorf("server %s client auth = %+v, want require_and_verify with trust pool file %s", name, ca, f.PKI.CA)
		}
		if len(srv.Logs) == 0 {
			t.Errorf("server %s has no access log", name)
		}
	}
	for _, want := range []string{"{http.request.tls.client.subject}", "{http.request.tls.resumed}"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("adapted config does not respond with %s", want)
		}
	}
}

func TestPrintDemoInstructions(t *testing.T) {
	o := testDemoOptions(t)
	f, err := prepareDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printDemoInstructions(&out, f, o)
	s := out.String()
	q := shellQuote
	for _, want := range []string{
		"curl --cert " + q(f.PKI.ClientACert) + " --key " + q(f.PKI.ClientAKey) + " --cacert " + q(f.PKI.CA) + " https://localhost:18443/",
		"openssl s_client -connect 127.0.0.1:18443 -servername localhost",
		// s_client sends only the leaf of -cert; the server needs the intermediate
		"-cert_chain " + q(f.PKI.ClientACert),
		"-sess_out " + q(f.Session),
		"-sess_in " + q(f.Session),
		`"Reused, TLSv1.3`,
		f.Caddyfile,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("instructions lack %q:\n%s", want, s)
		}
	}
	if !strings.Contains(q(f.PKI.CA), "'") {
		t.Errorf("path with a space not quoted: %s", q(f.PKI.CA))
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/demo-data/ca.pem": "/tmp/demo-data/ca.pem",
		"/tmp/demo data/ca.pem": "'/tmp/demo data/ca.pem'",
		"it's":                  `'it'\''s'`,
		"":                      "''",
		"$HOME":                 "'$HOME'",
		"127.0.0.1:8443":        "127.0.0.1:8443",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestDemoKEKDecodes(t *testing.T) {
	o := testDemoOptions(t)
	f, err := prepareDemo(o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.KEK)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != keyring.KEKSize {
		t.Fatalf("demo KEK decodes to %d bytes (%v)", len(raw), err)
	}
}
