// Package clientcert tests the client_cert matcher and verifier in a real,
// in-process Caddy with real TLS clients: routes guarded by different
// matchers (block, one-line and CEL forms), a site whose handshake refuses
// non-matching clients, and the same checks over resumed sessions with the
// tls_resume app.
package clientcert

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// clients are the three client identities of these tests, all issued by the
// set's intermediate.
type clients struct {
	set      *pki.Set
	files    pki.SetFiles
	payments *pki.Leaf // spiffe://demo.example.org/ns/payments/sa/api
	web      *pki.Leaf // spiffe://demo.example.org/ns/web/sa/frontend
	partner  *pki.Leaf // only a DNS SAN: api.partner.example.com
}

func newClients(t *testing.T) *clients {
	t.Helper()
	set, files := harness.NewPKI(t)
	partner, err := set.Intermediate.IssueClient(pki.Options{
		CommonName: "partner", DNSNames: []string{"api.partner.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &clients{set: set, files: files, payments: set.ClientA, web: set.ClientB, partner: partner}
}

// matcherSite guards a route per matcher form. Each route answers 200 with
// its name when its matcher matches and 403 otherwise.
func matcherSite(port int, f pki.SetFiles) string {
	return fmt.Sprintf(`https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	@payments client_cert spiffe_id spiffe://demo.example.org/ns/payments/*
	@web client_cert {
		spiffe_id spiffe://demo.example.org/ns/web/*
		issuer "CN=caddy-tlsresume Test Intermediate CA"
	}
	@partner client_cert {
		san_dns *.partner.example.com
	}
	@webcel expression client_cert({'spiffe_id': 'spiffe://demo.example.org/ns/web/*'})
	@anyspiffe client_cert spiffe_id spiffe://demo.example.org/*
	@longlived client_cert min_remaining_validity 1000d
	route /payments {
		respond @payments "payments" 200
		respond "forbidden" 403
	}
	route /web {
		respond @web "web" 200
		respond "forbidden" 403
	}
	route /partner {
		respond @partner "partner" 200
		respond "forbidden" 403
	}
	route /cel {
		respond @webcel "cel" 200
		respond "forbidden" 403
	}
	route /spiffe {
		respond @anyspiffe "spiffe" 200
		respond "forbidden" 403
	}
	route /longlived {
		respond @longlived "longlived" 200
		respond "forbidden" 403
	}
	respond "not found" 404
}
`, port, f.ServerCert, f.ServerKey, f.CA)
}

// verifierSite admits only payments clients, at the handshake.
func verifierSite(port int, f pki.SetFiles) string {
	return fmt.Sprintf(`https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
			verifier client_cert {
				spiffe_id spiffe://demo.example.org/ns/payments/*
				issuer "CN=caddy-tlsresume Test Intermediate CA"
			}
		}
	}
	respond "admitted {http.request.tls.client.subject}" 200
}
`, port, f.ServerCert, f.ServerKey, f.CA)
}

// expectations is the status each client gets on each matcher route.
var expectations = []struct {
	path                   string
	payments, web, partner int
}{
	{"/payments", 200, 403, 403},
	{"/web", 403, 200, 403},
	{"/partner", 403, 403, 200},
	{"/cel", 403, 200, 403},
	{"/spiffe", 200, 200, 403},
	{"/longlived", 403, 403, 403},
	{"/elsewhere", 404, 404, 404},
}

func (c *clients) byName() []struct {
	name string
	leaf *pki.Leaf
} {
	return []struct {
		name string
		leaf *pki.Leaf
	}{{"payments", c.payments}, {"web", c.web}, {"partner", c.partner}}
}

func wantStatus(i int, name string) int {
	e := expectations[i]
	switch name {
	case "payments":
		return e.payments
	case "web":
		return e.web
	}
	return e.partner
}

var versions = []struct {
	name string
	v    uint16
}{{"TLS1.2", tls.VersionTLS12}, {"TLS1.3", tls.VersionTLS13}}

func clientConfig(c *clients, leaf *pki.Leaf, version uint16) *tls.Config {
	cfg := harness.ClientConfig(c.set, leaf, "localhost")
	cfg.MinVersion, cfg.MaxVersion = version, version
	return cfg
}

// TestMatcherRoutes sends each client to each guarded route over full
// handshakes (stock Caddy never resumes mTLS sessions).
func TestMatcherRoutes(t *testing.T) {
	c := newClients(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	tester.InitServer(matcherSite(port, c.files), "caddyfile")
	addr := harness.Addr(port)
	ctx := context.Background()

	for _, ver := range versions {
		for _, cl := range c.byName() {
			cfg := clientConfig(c, cl.leaf, ver.v)
			for i, e := range expectations {
				resp, err := harness.Get(ctx, addr, cfg, e.path)
				if err != nil {
					t.Fatalf("%s %s %s: %v", ver.name, cl.name, e.path, err)
				}
				if want := wantStatus(i, cl.name); resp.StatusCode != want {
					t.Errorf("%s %s %s: status %d %q, want %d", ver.name, cl.name, e.path, resp.StatusCode, resp.Body, want)
				}
				if resp.State.DidResume {
					t.Errorf("%s %s %s: resumed without tls_resume", ver.name, cl.name, e.path)
				}
			}
		}
	}
}

// TestVerifierRefusesAtHandshake checks that the verifier admits a matching
// client and refuses the others during the TLS handshake: no HTTP request
// of theirs is ever answered.
func TestVerifierRefusesAtHandshake(t *testing.T) {
	c := newClients(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	tester.InitServer(verifierSite(port, c.files), "caddyfile")
	addr := harness.Addr(port)
	ctx := context.Background()

	for _, ver := range versions {
		resp, err := harness.Get(ctx, addr, clientConfig(c, c.payments, ver.v), "/")
		if err != nil {
			t.Fatalf("%s payments refused: %v", ver.name, err)
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "CN=payments-api") {
			t.Errorf("%s payments: %d %q", ver.name, resp.StatusCode, resp.Body)
		}
		for _, refused := range []*pki.Leaf{c.web, c.partner} {
			// The handshake itself (TLS 1.2), or the first read after
			// it (TLS 1.3, where the server checks the client's
			// certificate after the client has sent Finished), fails.
			st, err := harness.Handshake(ctx, addr, clientConfig(c, refused, ver.v))
			if err == nil {
				t.Errorf("%s %s: handshake completed (resumed=%v)", ver.name, refused.Cert.Subject.CommonName, st.DidResume)
			}
			if r, err := harness.Get(ctx, addr, clientConfig(c, refused, ver.v), "/"); err == nil {
				t.Errorf("%s %s: got an HTTP answer %d %q", ver.name, refused.Cert.Subject.CommonName, r.StatusCode, r.Body)
			} else if !strings.Contains(err.Error(), "remote error: tls:") {
				// the server's TLS alert, not some other failure
				t.Errorf("%s %s: refused with %v; want a TLS alert from the server", ver.name, refused.Cert.Subject.CommonName, err)
			}
		}
	}
}

// TestMatchersOnResumedConnections repeats the route checks over resumed
// sessions: the tls_resume app enables session tickets on the mTLS site, and
// the matcher must answer exactly as it did on the full handshake.
func TestMatchersOnResumedConnections(t *testing.T) {
	if _, err := caddy.GetModule("tls_resume"); err != nil {
		t.Skipf("the tls_resume app is not registered yet (%v); resumption on mTLS sites needs it", err)
	}
	c := newClients(t)
	tester := harness.NewTester(t)
	mport, vport := harness.FreePort(t), harness.FreePort(t)
	tester.InitServer("{\n\ttls_resume\n}\n\n"+matcherSite(mport, c.files)+"\n"+verifierSite(vport, c.files), "caddyfile")
	maddr, vaddr := harness.Addr(mport), harness.Addr(vport)
	ctx := context.Background()

	for _, ver := range versions {
		for _, cl := range c.byName() {
			cfg := clientConfig(c, cl.leaf, ver.v)
			for i, e := range expectations {
				full, err := harness.Get(ctx, maddr, clientConfig(c, cl.leaf, ver.v), e.path)
				if err != nil {
					t.Fatalf("%s %s %s (full): %v", ver.name, cl.name, e.path, err)
				}
				// first request with cfg fills its session cache
				if _, err := harness.Get(ctx, maddr, cfg, e.path); err != nil {
					t.Fatalf("%s %s %s: %v", ver.name, cl.name, e.path, err)
				}
				resumed, err := harness.Get(ctx, maddr, cfg, e.path)
				if err != nil {
					t.Fatalf("%s %s %s (resumed): %v", ver.name, cl.name, e.path, err)
				}
				if full.State.DidResume || !resumed.State.DidResume {
					t.Fatalf("%s %s %s: resumed full=%v second=%v; want false, true", ver.name, cl.name, e.path, full.State.DidResume, resumed.State.DidResume)
				}
				want := wantStatus(i, cl.name)
				if full.StatusCode != want || resumed.StatusCode != want || full.Body != resumed.Body {
					t.Errorf("%s %s %s: full %d %q, resumed %d %q, want %d", ver.name, cl.name, e.path,
						full.StatusCode, full.Body, resumed.StatusCode, resumed.Body, want)
				}
			}
		}

		// The verifier site: the admitted client resumes and is admitted
		// again; the refused ones never get a session to resume.
		cfg := clientConfig(c, c.payments, ver.v)
		for i := 0; i < 2; i++ {
			resp, err := harness.Get(ctx, vaddr, cfg, "/")
			if err != nil {
				t.Fatalf("%s payments on the verifier site (request %d): %v", ver.name, i+1, err)
			}
			if resp.StatusCode != http.StatusOK || resp.State.DidResume != (i == 1) {
				t.Errorf("%s payments on the verifier site (request %d): %d, resumed=%v", ver.name, i+1, resp.StatusCode, resp.State.DidResume)
			}
		}
		for _, refused := range []*pki.Leaf{c.web, c.partner} {
			rcfg := clientConfig(c, refused, ver.v)
			for i := 0; i < 2; i++ {
				if r, err := harness.Get(ctx, vaddr, rcfg, "/"); err == nil {
					t.Errorf("%s %s admitted by the verifier (attempt %d): %d resumed=%v", ver.name, refused.Cert.Subject.CommonName, i+1, r.StatusCode, r.State.DidResume)
				}
			}
		}
	}
}

// TestVerifierRunsOnResumption gives the web client a session under a
// verifier that admits every SPIFFE ID of the trust domain, then reloads
// the config with a verifier that admits only payments. The web client's
// resumption attempt is refused, while the payments client resumes: the
// verifier runs on resumed handshakes, so a policy change takes effect on
// existing sessions at once.
func TestVerifierRunsOnResumption(t *testing.T) {
	if _, err := caddy.GetModule("tls_resume"); err != nil {
		t.Skipf("the tls_resume app is not registered yet (%v); resumption on mTLS sites needs it", err)
	}
	c := newClients(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	addr := harness.Addr(port)
	ctx := context.Background()
	site := func(spiffe string) string {
		return fmt.Sprintf(`{
	tls_resume
}

https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
			verifier client_cert spiffe_id %s
		}
	}
	respond "admitted" 200
}
`, port, c.files.ServerCert, c.files.ServerKey, c.files.CA, spiffe)
	}
	tester.InitServer(site("spiffe://demo.example.org/*"), "caddyfile")

	for _, ver := range versions {
		webCfg := clientConfig(c, c.web, ver.v)
		payCfg := clientConfig(c, c.payments, ver.v)
		for _, cfg := range []*tls.Config{webCfg, payCfg} {
			for i := 0; i < 2; i++ {
				resp, err := harness.Get(ctx, addr, cfg, "/")
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Fatalf("%s lax verifier, request %d: %v", ver.name, i+1, err)
				}
				if resp.State.DidResume != (i == 1) {
					t.Fatalf("%s lax verifier, request %d: resumed=%v", ver.name, i+1, resp.State.DidResume)
				}
			}
		}
		tester.InitServer(site("spiffe://demo.example.org/ns/payments/*"), "caddyfile")
		resp, err := harness.Get(ctx, addr, payCfg, "/")
		if err != nil || resp.StatusCode != http.StatusOK || !resp.State.DidResume {
			t.Fatalf("%s payments after the reload: err=%v resp=%+v; want a resumed 200", ver.name, err, resp)
		}
		if r, err := harness.Get(ctx, addr, webCfg, "/"); err == nil {
			t.Errorf("%s web resumed past the stricter verifier: %d resumed=%v", ver.name, r.StatusCode, r.State.DidResume)
		}
		tester.InitServer(site("spiffe://demo.example.org/*"), "caddyfile")
	}
}
