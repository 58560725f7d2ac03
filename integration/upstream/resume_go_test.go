package upstream

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// TestEdgeResumesGoBackend: Caddy edge → Go crypto/tls mTLS upstream with
// stock session tickets, upstream keep-alive off. Every request opens a new
// upstream connection, and after the first at least 99% of them resume —
// counted by the backend and by the edge's metric.
func TestEdgeResumesGoBackend(t *testing.T) {
	set, files := harness.NewPKI(t)
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			be := startGoBackend(t, goBackendOptions{
				name: "go", cert: set.Server.TLSCertificate(), clientCAs: set.Root, maxVer: version,
			})
			e := startEdge(t, "", fmt.Sprintf("\treverse_proxy https://%s {\n\t\ttransport http_resume {\n%s\n\t\t}\n\t}", be.Addr, transportOptions(files)))
			c := e.counter()

			const n = 200
			for i := 0; i < n; i++ {
				body, _ := e.get("/")
				if i > 0 && !strings.HasSuffix(body, "resumed=true") {
					t.Logf("request %d: %s", i, body)
				}
			}
			if got := be.handshakes.Load(); got != n {
				t.Fatalf("backend saw %d handshakes for %d requests: upstream keep-alive should be off", got, n)
			}
			requireResumeRate(t, "backend view", be.resumed.Load(), be.handshakes.Load())
			r, f := c.delta()
			if r+f != n {
				t.Errorf("metric counted %v handshakes, want %d", r+f, n)
			}
			requireResumeRate(t, "edge metric", int64(r), int64(r+f))
		})
	}
}

// TestEdgeUpstreamCertificateChanged: an upstream restarts with a new
// certificate and new ticket keys; the session the edge holds is useless to
// it, so the next connection is a full handshake, which succeeds and starts
// a new session that is resumed from then on.
func TestEdgeUpstreamCertificateChanged(t *testing.T) {
	set, files := harness.NewPKI(t)
	be := startGoBackend(t, goBackendOptions{name: "old", cert: set.Server.TLSCertificate(), clientCAs: set.Root})
	e := startEdge(t, "", fmt.Sprintf("\treverse_proxy https://%s {\n\t\ttransport http_resume {\n%s\n\t\t}\n\t}", be.Addr, transportOptions(files)))
	for i := 0; i < 5; i++ {
		e.get("/")
	}
	if be.resumed.Load() != 4 {
		t.Fatalf("before the change: %d of 5 handshakes resumed", be.resumed.Load())
	}

	leaf, err := set.Intermediate.IssueServer(pki.Options{
		CommonName:  "renewed",
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := be.Addr
	be.stop()
	renewed := startGoBackend(t, goBackendOptions{name: "renewed", addr: addr, cert: leaf.TLSCertificate(), clientCAs: set.Root})

	c := e.counter()
	body, backend := e.get("/")
	if backend != "renewed" || body != "backend=renewed resumed=false" {
		t.Fatalf("first request after the change: %q from %q, want a full handshake with the renewed backend", body, backend)
	}
	if r, f := c.delta(); r != 0 || f != 1 {
		t.Errorf("metric after the change: resumed +%v full +%v, want +0 and +1", r, f)
	}
	for i := 0; i < 5; i++ {
		if body, _ := e.get("/"); body != "backend=renewed resumed=true" {
			t.Fatalf("request %d after the change: %q", i, body)
		}
	}
	if hs, res := renewed.handshakes.Load(), renewed.resumed.Load(); hs != 6 || res != 5 {
		t.Errorf("renewed backend: %d handshakes, %d resumed; want 6 and 5", hs, res)
	}
}

// TestEdgeNeverOffersSessionAcrossServerNames: two upstreams under
// different server names, sharing one ticket key and one certificate valid
// for both names — so the only thing keeping a.internal's session away
// from b.internal is the session cache's keying. Both routes use the same
// transport settings (one shared cache). Each backend checks every ticket
// it is offered against the tickets it issued itself.
func TestEdgeNeverOffersSessionAcrossServerNames(t *testing.T) {
	set, files := harness.NewPKI(t, "a.internal", "b.internal")
	var key [32]byte
	copy(key[:], "one ticket key for both servers")
	a := startGoBackend(t, goBackendOptions{name: "a", cert: set.Server.TLSCertificate(), clientCAs: set.Root, ticketKey: &key})
	b := startGoBackend(t, goBackendOptions{name: "b", cert: set.Server.TLSCertificate(), clientCAs: set.Root, ticketKey: &key})
	site := fmt.Sprintf(`	handle /a {
		reverse_proxy https://%s {
			transport http_resume {
%s
			}
		}
	}
	handle /b {
		reverse_proxy https://%s {
			transport http_resume {
%s
			}
		}
	}`, a.Addr, transportOptions(files, "tls_server_name a.internal"), b.Addr, transportOptions(files, "tls_server_name b.internal"))
	e := startEdge(t, "", site)

	for i := 0; i < 20; i++ {
		if _, backend := e.get("/a"); backend != "a" {
			t.Fatalf("/a answered by %q", backend)
		}
	}
	if a.resumed.Load() != 19 {
		t.Fatalf("a.internal: %d of 20 handshakes resumed", a.resumed.Load())
	}
	// b.internal's first connection comes after 20 sessions with
	// a.internal: the client must present no ticket at all.
	if _, backend := e.get("/b"); backend != "b" {
		t.Fatalf("/b answered by %q", backend)
	}
	if n := b.offered.Load(); n != 0 {
		t.Fatalf("b.internal's first handshake was offered %d ticket(s): a session crossed server names", n)
	}
	// Interleaved traffic: each side resumes, only ever with its own tickets.
	for i := 0; i < 20; i++ {
		e.get("/a")
		e.get("/b")
	}
	if fa, fb := a.foreign.Load(), b.foreign.Load(); fa != 0 || fb != 0 {
		t.Fatalf("tickets offered across server names: a.internal saw %d foreign, b.internal %d", fa, fb)
	}
	requireResumeRate(t, "a.internal", a.resumed.Load(), a.handshakes.Load())
	requireResumeRate(t, "b.internal", b.resumed.Load(), b.handshakes.Load())
}

// TestEdgeSessionsAcrossReload: a config reload that keeps the upstream TLS
// settings keeps the sessions (the first connection after the reload
// resumes); a reload that changes the client certificate starts afresh (no
// session is offered under the new identity).
func TestEdgeSessionsAcrossReload(t *testing.T) {
	set, files := harness.NewPKI(t)
	be := startGoBackend(t, goBackendOptions{name: "go", cert: set.Server.TLSCertificate(), clientCAs: set.Root})
	site := func(files pki.SetFiles, marker string) string {
		return fmt.Sprintf("\theader X-Config %s\n\treverse_proxy https://%s {\n\t\ttransport http_resume {\n%s\n\t\t}\n\t}", marker, be.Addr, transportOptions(files))
	}
	e := startEdge(t, "", site(files, "one"))
	for i := 0; i < 3; i++ {
		e.get("/")
	}

	// Reload with another route config but the same upstream TLS settings.
	e2 := startEdge(t, "", site(files, "two"))
	if body, _ := e2.get("/"); body != "backend=go resumed=true" {
		t.Fatalf("first request after a reload: %q, want a resumed session", body)
	}

	// Reload with client certificate B instead of A.
	swapped := files
	swapped.ClientACert, swapped.ClientAKey = files.ClientBCert, files.ClientBKey
	before := be.offered.Load()
	e3 := startEdge(t, "", site(swapped, "three"))
	if body, _ := e3.get("/"); body != "backend=go resumed=false" {
		t.Fatalf("first request under a new client certificate: %q, want a full handshake", body)
	}
	if n := be.offered.Load() - before; n != 0 {
		t.Fatalf("a session made with client certificate A was offered under B (%d tickets)", n)
	}
	if body, _ := e3.get("/"); body != "backend=go resumed=true" {
		t.Fatalf("second request under the new client certificate: %q", body)
	}
}
