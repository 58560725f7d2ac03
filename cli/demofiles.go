package cli

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// demoOptions are the inputs of the demo's files.
type demoOptions struct {
	// Dir holds everything the demo writes; it is made absolute.
	Dir string
	// Listen is HOST:PORT of the demo site; HOST may be empty (all
	// interfaces).
	Listen string
	// Admin is Caddy's admin endpoint address.
	Admin string
}

// demoFiles are the absolute paths of the demo's files.
type demoFiles struct {
	Dir       string
	PKI       pki.SetFiles
	KEK       string // the KEK file, read through a {file.*} placeholder
	Caddyfile string
	Storage   string // Caddy's storage directory (holds the key ring)
	Session   string // where the printed openssl commands keep their session

	// Generated is true when this run created the PKI, false when it
	// reused the one already in Dir.
	Generated bool
	// Port and Host are parsed from demoOptions.Listen; Host is empty for
	// "all interfaces".
	Port string
	Host string
}

// demoValidity is how long the demo's leaf certificates are valid.
const demoValidity = 30 * 24 * time.Hour

// prepareDemo writes (or reuses) the demo PKI and KEK in o.Dir and writes
// the Caddyfile, which is regenerated on every run so flags take effect.
func prepareDemo(o demoOptions) (demoFiles, error) {
	var f demoFiles
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return f, fmt.Errorf("--listen %q: want HOST:PORT, e.g. localhost:8443: %v", o.Listen, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return f, fmt.Errorf("--listen %q: port %q is not a number from 1 to 65535", o.Listen, port)
	}
	if strings.ContainsAny(host, " \t\"{}") {
		return f, fmt.Errorf("--listen %q: invalid host %q", o.Listen, host)
	}
	if _, _, err := net.SplitHostPort(o.Admin); err != nil {
		return f, fmt.Errorf("--admin %q: want HOST:PORT, e.g. localhost:2019: %v", o.Admin, err)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return f, fmt.Errorf("--dir %q: %v", o.Dir, err)
	}
	f = demoFiles{
		Dir:       dir,
		KEK:       filepath.Join(dir, "kek"),
		Caddyfile: filepath.Join(dir, "Caddyfile"),
		Storage:   filepath.Join(dir, "storage"),
		Session:   filepath.Join(dir, "session.pem"),
		Host:      host,
		Port:      port,
	}
	if err := os.MkdirAll(f.Storage, 0o700); err != nil {
		return f, fmt.Errorf("creating demo directory: %w", err)
	}
	if f.PKI, f.Generated, err = demoPKI(dir); err != nil {
		return f, err
	}
	if err := demoKEK(f.KEK); err != nil {
		return f, err
	}
	var cf bytes.Buffer
	if err := demoCaddyfileTemplate.Execute(&cf, demoTemplateData{f: f, o: o}); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.Caddyfile, cf.Bytes(), 0o644); err != nil {
		return f, fmt.Errorf("writing %s: %w", f.Caddyfile, err)
	}
	return f, nil
}

// demoPKI reuses the PKI in dir when all its files are present and its
// certificates stay valid for at least another hour; otherwise it generates
// and writes a new one.
func demoPKI(dir string) (pki.SetFiles, bool, error) {
	files := pki.SetFiles{
		CA:          filepath.Join(dir, "ca.pem"),
		ServerCert:  filepath.Join(dir, "server.pem"),
		ServerKey:   filepath.Join(dir, "server.key"),
		ClientACert: filepath.Join(dir, "client-a.pem"),
		ClientAKey:  filepath.Join(dir, "client-a.key"),
		ClientBCert: filepath.Join(dir, "client-b.pem"),
		ClientBKey:  filepath.Join(dir, "client-b.key"),
	}
	if demoPKIUsable(files) {
		return files, false, nil
	}
	set, err := newDemoSet()
	if err != nil {
		return files, false, fmt.Errorf("generating the demo PKI: %w", err)
	}
	written, err := set.WriteFiles(dir)
	if err != nil {
		return files, false, fmt.Errorf("writing the demo PKI: %w", err)
	}
	return written, true, nil
}

func demoPKIUsable(f pki.SetFiles) bool {
	for _, p := range []string{f.ServerKey, f.ClientAKey, f.ClientBKey} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	soon := time.Now().Add(time.Hour)
	for _, p := range []string{f.CA, f.ServerCert, f.ClientACert, f.ClientBCert} {
		b, err := os.ReadFile(p)
		if err != nil {
			return false
		}
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "CERTIFICATE" {
			return false
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil || c.NotAfter.Before(soon) || c.NotBefore.After(time.Now()) {
			return false
		}
	}
	return true
}

// newDemoSet is pki.NewSet with leaves valid for demoValidity, so a demo
// directory keeps working for weeks.
func newDemoSet() (*pki.Set, error) {
	root, err := pki.NewRoot("caddy-tlsresume Demo Root CA", pki.ECDSAP256)
	if err != nil {
		return nil, err
	}
	inter, err := root.NewIntermediate("caddy-tlsresume Demo Intermediate CA", pki.ECDSAP256)
	if err != nil {
		return nil, err
	}
	nb := time.Now().Add(-time.Hour)
	na := nb.Add(demoValidity)
	srv, err := inter.IssueServer(pki.Options{
		CommonName:  "localhost",
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:   nb, NotAfter: na,
	})
	if err != nil {
		return nil, err
	}
	a, err := inter.IssueClient(pki.Options{
		CommonName:   "payments-api",
		Organization: []string{"caddy-tlsresume demo"},
		URIs:         []string{"spiffe://demo.example.org/ns/payments/sa/api"},
		NotBefore:    nb, NotAfter: na,
	})
	if err != nil {
		return nil, err
	}
	b, err := inter.IssueClient(pki.Options{
		CommonName:   "web-frontend",
		Organization: []string{"caddy-tlsresume demo"},
		URIs:         []string{"spiffe://demo.example.org/ns/web/sa/frontend"},
		NotBefore:    nb, NotAfter: na,
	})
	if err != nil {
		return nil, err
	}
	return &pki.Set{Root: root, Intermediate: inter, Server: srv, ClientA: a, ClientB: b}, nil
}

// demoKEK keeps an existing KEK file if it holds a valid KEK and writes a
// new one (mode 0600) if there is none. An invalid existing file is an
// error: it may be a real key someone put there.
func demoKEK(path string) error {
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if _, derr := keyring.DecodeKEK(string(b)); derr != nil {
			return fmt.Errorf("%s does not hold a KEK (%d bytes of standard base64); delete it to get a new one", path, keyring.KEKSize)
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		kek, err := keyring.GenerateKEK()
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(kek+"\n"), 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	default:
		return fmt.Errorf("reading %s: %w", path, err)
	}
}

type demoTemplateData struct {
	f demoFiles
	o demoOptions
}

func (d demoTemplateData) Admin() string   { return d.o.Admin }
func (d demoTemplateData) Storage() string { return caddyQuote(d.f.Storage) }
func (d demoTemplateData) KEK() string     { return caddyQuote("{file." + d.f.KEK + "}") }
func (d demoTemplateData) Site() string    { return "https://localhost:" + d.f.Port }
func (d demoTemplateData) Bind() string    { return d.f.Host }
func (d demoTemplateData) Cert() string    { return caddyQuote(d.f.PKI.ServerCert) }
func (d demoTemplateData) Key() string     { return caddyQuote(d.f.PKI.ServerKey) }
func (d demoTemplateData) CA() string      { return caddyQuote(d.f.PKI.CA) }

// caddyQuote quotes a Caddyfile token, so paths with spaces stay one token.
func caddyQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

var demoCaddyfileTemplate = template.Must(template.New("Caddyfile").Parse(`# Written by 'caddy tls-resume demo' for a throwaway local demo; rewritten on
# every run (the PKI, the KEK and the storage in this directory are kept).
{
	admin {{.Admin}}
	persist_config off
	storage file_system {{.Storage}}
	tls_resume {
		kek {{.KEK}}
	}
}

{{.Site}} {
{{- if .Bind}}
	bind {{.Bind}}
{{- end}}
	tls {{.Cert}} {{.Key}} {
		client_auth {
			mode require_and_verify
			trust_pool file {{.CA}}
		}
	}
	log
	respond <<BODY
		client:   {http.request.tls.client.subject}
		resumed:  {http.request.tls.resumed}
		protocol: {http.request.tls.version}

		BODY 200
}
`))
