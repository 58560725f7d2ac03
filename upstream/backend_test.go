package upstream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// testPKI is one certificate hierarchy shared by the tests of this package,
// written to disk once for the transports' file options.
type testPKI struct {
	set   *pki.Set
	files pki.SetFiles
}

var (
	pkiOnce sync.Once
	pkiVal  *testPKI
	pkiErr  error
)

func getPKI(t testing.TB) *testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		set, err := pki.NewSet(pki.ECDSAP256, "a.internal", "b.internal")
		if err != nil {
			pkiErr = err
			return
		}
		dir, err := mkdirTemp()
		if err != nil {
			pkiErr = err
			return
		}
		files, err := set.WriteFiles(dir)
		if err != nil {
			pkiErr = err
			return
		}
		pkiVal = &testPKI{set: set, files: files}
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pkiVal
}

// backend is a crypto/tls HTTPS server requiring a client certificate from
// the test PKI. It records, per handshake, whether a session was resumed and
// whether the client offered a ticket at all.
type backend struct {
	Addr string

	handshakes atomic.Int64 // completed handshakes
	resumed    atomic.Int64 // of which resumed
	offered    atomic.Int64 // ClientHellos that carried a ticket / PSK
	requests   atomic.Int64

	srv *http.Server
}

// startBackend serves on a free loopback port with cert as its certificate.
// configure, if not nil, adjusts the tls.Config before serving.
func startBackend(t testing.TB, cert tls.Certificate, configure func(*tls.Config)) *backend {
	t.Helper()
	b, err := serveBackend(t, "127.0.0.1:0", cert, configure)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serveBackend starts a backend listening on addr.
func serveBackend(t testing.TB, addr string, cert tls.Certificate, configure func(*tls.Config)) (*backend, error) {
	p := getPKI(t)
	b := &backend{}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.set.Root.Pool(),
		NextProtos:   []string{"h2", "http/1.1"},
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		b.offered.Add(1)
		return cfg.DecryptTicket(identity, cs)
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		b.handshakes.Add(1)
		if cs.DidResume {
			b.resumed.Add(1)
		}
		return nil
	}
	if configure != nil {
		configure(cfg)
	}
	ln, err := tls.Listen("tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	b.Addr = ln.Addr().String()
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.requests.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "resumed=%v", r.TLS.DidResume)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b, nil
}

// provisionTransport loads the http_resume module from JSON the way Caddy
// does (strict decoding, Provision, Cleanup when the context ends).
func provisionTransport(t testing.TB, cfg map[string]any) *Transport {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := loadTransport(t, raw)
	if err != nil {
		t.Fatalf("provisioning %s: %v", raw, err)
	}
	return tr
}

func loadTransport(t testing.TB, raw []byte) (*Transport, error) {
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	mod, err := ctx.LoadModuleByID("http.reverse_proxy.transport.http_resume", raw)
	if err != nil {
		return nil, err
	}
	return mod.(*Transport), nil
}

// mtlsConfig is the transport JSON for an mTLS upstream using the test PKI,
// with keep-alive off so every request opens a new connection.
func mtlsConfig(t testing.TB, extra map[string]any) map[string]any {
	p := getPKI(t)
	tlsCfg := map[string]any{
		"ca":                          map[string]any{"provider": "file", "pem_files": []string{p.files.CA}},
		"client_certificate_file":     p.files.ClientACert,
		"client_certificate_key_file": p.files.ClientAKey,
	}
	cfg := map[string]any{
		"tls":        tlsCfg,
		"keep_alive": map[string]any{"enabled": false},
	}
	for k, v := range extra {
		if k == "tls" {
			for tk, tv := range v.(map[string]any) {
				tlsCfg[tk] = tv
			}
			continue
		}
		cfg[k] = v
	}
	return cfg
}

// get sends one GET through tr to addr and returns the body.
func get(t testing.TB, tr http.RoundTripper, addr string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("request to %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	return string(body)
}

// pkiDir holds the PEM files of the shared test PKI; TestMain removes it.
var pkiDir string

func mkdirTemp() (string, error) {
	dir, err := os.MkdirTemp("", "upstream-test-")
	pkiDir = dir
	return dir, err
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pkiDir != "" {
		_ = os.RemoveAll(pkiDir)
	}
	os.Exit(code)
}
