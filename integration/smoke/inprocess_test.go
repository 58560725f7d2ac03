package smoke

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// mtlsSite is a stock Caddy mTLS site: server certificate from the test
// PKI, client certificates required and verified against its root.
func mtlsSite(port int, f pki.SetFiles) string {
	return fmt.Sprintf(`https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	respond "hello {http.request.tls.client.subject}"
}
`, port, f.ServerCert, f.ServerKey, f.CA)
}

func TestInProcessMTLSSite(t *testing.T) {
	set, files := harness.NewPKI(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	tester.InitServer(mtlsSite(port, files), "caddyfile")
	addr := harness.Addr(port)
	ctx := context.Background()

	// client A is admitted and the response names it
	resp, err := harness.Get(ctx, addr, harness.ClientConfig(set, set.ClientA, "localhost"), "/")
	if err != nil {
		t.Fatalf("client A: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "CN=payments-api") {
		t.Errorf("client A got %d %q", resp.StatusCode, resp.Body)
	}
	if len(resp.State.PeerCertificates) == 0 || resp.State.PeerCertificates[0].Subject.CommonName != "localhost" {
		t.Errorf("server certificate not the test PKI's")
	}

	// no client certificate: refused, with either protocol version
	for _, v := range []uint16{0x0303, 0x0304} {
		cfg := harness.ClientConfig(set, nil, "localhost")
		cfg.MinVersion, cfg.MaxVersion = v, v
		if r, err := harness.Get(ctx, addr, cfg, "/"); err == nil {
			t.Errorf("TLS %#x without a client certificate was admitted: %d %q", v, r.StatusCode, r.Body)
		}
	}

	// a client certificate from another CA: refused
	other, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	cfg := harness.ClientConfig(set, other.ClientA, "localhost")
	if r, err := harness.Get(ctx, addr, cfg, "/"); err == nil {
		t.Errorf("a client certificate from a foreign CA was admitted: %d %q", r.StatusCode, r.Body)
	}

	// caddytest's own client (no client certificate) is refused as well
	if r, err := tester.Client.Get(fmt.Sprintf("https://localhost:%d/", port)); err == nil {
		r.Body.Close()
		t.Errorf("caddytest client without a certificate got %s", r.Status)
	}
}

func TestInProcessAdminAddress(t *testing.T) {
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	tester.InitServer(fmt.Sprintf("http://127.0.0.1:%d {\n\trespond ok\n}\n", port), "caddyfile")
	// the loaded config carries the harness's admin address, so the next
	// load still reaches this Caddy
	resp, err := http.Get(tester.AdminURL("/config/admin/listen"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got := strings.TrimSpace(string(b)); got != `"`+tester.AdminAddr+`"` {
		t.Errorf("admin listen = %s, want %q", got, tester.AdminAddr)
	}
	tester.AssertGetResponse(fmt.Sprintf("http://127.0.0.1:%d/", port), 200, "ok")

	// JSON configs get the same treatment
	tester.InitServer(fmt.Sprintf(`{"apps":{"http":{"servers":{"s":{"listen":["127.0.0.1:%d"],
		"routes":[{"handle":[{"handler":"static_response","body":"json ok"}]}]}}}}}`, port), "json")
	tester.AssertGetResponse(fmt.Sprintf("http://127.0.0.1:%d/", port), 200, "json ok")
}

func TestInProcessRefusesConfigsCaddytestWouldBreak(t *testing.T) {
	tester := harness.NewTester(t)
	for _, c := range []struct{ config, adapter, want string }{
		{"localhost {\n\ttls /etc/x/server.crt /etc/x/server.key\n}\n", "caddyfile", "rewritten by caddytest"},
		{"{\n\tadmin localhost:1\n}\n", "caddyfile", "leave it out"},
		{`{"admin":{"listen":"localhost:1"}}`, "json", "leave it unset"},
		{"x", "yaml", "unsupported adapter"},
	} {
		_, err := tester.Complete(c.config, c.adapter)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Complete(%q): err = %v, want %q", c.config, err, c.want)
		}
	}
}
