package hardening

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// excludeA is a client_cert verifier that admits client B
// (spiffe://demo.example.org/ns/web/sa/frontend) and refuses client A
// (spiffe://demo.example.org/ns/payments/sa/api).
const excludeA = "verifier client_cert spiffe_id spiffe://demo.example.org/ns/web/*"

// site is one HTTPS site of an h3Config.
type site struct {
	host     string
	verifier string // a client_auth verifier line, or ""
}

// h3Config is an in-process Caddyfile: one port serving HTTP/1.1, 2 and 3
// (0-RTT on, Caddy's default), tls_resume with a given KEK over its own
// storage plus extra option lines, and mTLS sites that log every request
// to logFile. No early_data_guard: a request that reaches a handler in
// 0-RTT runs, whatever its method, so only the ticket checks keep it out.
func h3Config(storageDir, kek, extra string, port int, files pki.SetFiles, logFile string, sites ...site) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{
	storage file_system %s
	servers {
		protocols h1 h2 h3
	}
	tls_resume {
		kek %s
%s	}
}
`, storageDir, kek, extra)
	for _, s := range sites {
		fmt.Fprintf(&b, `
https://%s:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
			%s
		}
	}
	log {
		output file %s
		format json
	}
	respond "%s {method} {uri} {http.request.tls.client.subject}"
}
`, s.host, port, files.ServerCert, files.ServerKey, files.CA, s.verifier, logFile, s.host)
	}
	return b.String()
}

// earlyModes are the two ways early data is possible on a ticket: a
// stateless ticket with the replayable opt-in, and a session store that
// grants each session's 0-RTT once. storeLines returns the option lines.
var earlyModes = []struct {
	name       string
	storeLines func(t *testing.T) string
}{
	{"early_data_replayable", func(*testing.T) string { return "\t\tearly_data replayable\n" }},
	{"session_store", nil}, // set per test: memory, or redis where sessions must outlive a reload
}

func memoryStore(*testing.T) string { return "\t\tsession_store memory {\n\t\t\tbudget 2s\n\t\t}\n" }

func redisStore(t *testing.T) string {
	srv := testredis.Must(t)
	return fmt.Sprintf("\t\tsession_store redis {\n\t\t\taddress %s\n\t\t\tbudget 2s\n\t\t}\n", srv.Addr)
}

// victimCheck is the heart of every 0-RTT test: client A, refused by now,
// sends method path in 0-RTT under a ticket it got while it was admitted.
// The request must never reach a handler (the access log never records
// it), and the server must hand A no new ticket. A request from client B
// on a fresh full handshake, logged after A's attempt, shows the log is
// being written.
func victimCheck(t *testing.T, ctx context.Context, addr, serverName string, cfg *clientA, method, path, body string, sentinel func()) {
	t.Helper()
	puts := cfg.cache.Puts()
	url := "https://" + serverName + ":" + portOf(addr) + path
	r := h3Early(t, ctx, addr, cfg.tls, method, url, body, false)
	t.Logf("client A, %s %s in 0-RTT: %v", method, path, r)
	sentinel()
	if n := accessLogCount(t, cfg.logFile, path); n != 0 {
		t.Errorf("%s %s sent in 0-RTT by the refused client reached the handler %d time(s) (%v)", method, path, n, r)
	}
	if r.Status != 0 {
		t.Errorf("the refused client got an HTTP response %d %q", r.Status, r.Body)
	}
	if r.Used0RTT {
		t.Errorf("the server accepted the refused client's early data (%v)", r)
	}
	if got := cfg.cache.Puts(); got != puts {
		t.Errorf("the refused client received %d new session ticket(s)", got-puts)
	}
}

// clientA bundles the victim's HTTP/3 client with the log to check.
type clientA struct {
	tls     *tls.Config
	cache   *sessionCache
	logFile string
}

func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	return addr[i+1:]
}

// control0RTT sends GET path in 0-RTT with cfg and requires that it was
// served from early data on a resumed connection, and that a new ticket
// followed.
func control0RTT(t *testing.T, ctx context.Context, addr, serverName string, cfg *tls.Config, logFile, path, who string) {
	t.Helper()
	cache := cfg.ClientSessionCache.(*sessionCache)
	before := cache.Puts()
	url := "https://" + serverName + ":" + portOf(addr) + path
	r := h3Early(t, ctx, addr, cfg, http.MethodGet, url, "", true)
	if r.Status != http.StatusOK || !r.Resumed || !r.Used0RTT {
		t.Fatalf("%s: GET %s in 0-RTT: %v; want 200 on a resumed connection that used 0-RTT (else this test proves nothing)", who, path, r)
	}
	if cache.Puts() == before {
		t.Fatalf("%s: no new ticket after a resumed 0-RTT connection", who)
	}
	waitLogged(t, logFile, path, 1, 5*time.Second)
}

// sentinelFor returns a function that has client B make a full handshake
// and a request over TCP to serverName, and waits until the access log has
// it: anything logged before it has been written by then.
func sentinelFor(t *testing.T, ctx context.Context, set *pki.Set, addr, serverName, logFile string) func() {
	n := 0
	return func() {
		t.Helper()
		n++
		path := "/sentinel-" + strconv.Itoa(n)
		resp, err := harness.Get(ctx, addr, harness.ClientConfig(set, set.ClientB, serverName), path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("client B, GET %s on %s: %v %+v", path, serverName, err, resp)
		}
		waitLogged(t, logFile, path, 1, 5*time.Second)
		// a 0-RTT request runs as soon as it arrives, long before B's
		// handshake; allow the log writer a moment anyway
		time.Sleep(200 * time.Millisecond)
	}
}

// requireFullRefused checks that client leaf cannot get in with a full
// handshake on serverName.
func requireFullRefused(t *testing.T, ctx context.Context, set *pki.Set, leaf *pki.Leaf, addr, serverName string) {
	t.Helper()
	resp, err := harness.Get(ctx, addr, harness.ClientConfig(set, leaf, serverName), "/full-handshake")
	if err == nil {
		t.Fatalf("client %s admitted on %s with a full handshake: %d %q", leaf.Cert.Subject.CommonName, serverName, resp.StatusCode, resp.Body)
	}
}

// TestRevokedClientEarlyDataNeverRuns (issue 14, hole 1, first case): a
// client holding a ticket is revoked through the admin API; its 0-RTT GET
// never reaches the handler and it gets no new ticket. Before the revoke
// the same client's ticket did carry 0-RTT, and after it client B's still
// does.
func TestRevokedClientEarlyDataNeverRuns(t *testing.T) {
	for _, mode := range earlyModes {
		t.Run(mode.name, func(t *testing.T) {
			store := mode.storeLines
			if store == nil {
				store = memoryStore
			}
			set, files := harness.NewPKI(t)
			tester := harness.NewTester(t)
			port := harness.FreePort(t)
			addr := harness.Addr(port)
			logFile := filepath.Join(t.TempDir(), "access.log")
			tester.InitServer(h3Config(t.TempDir(), newKEK(t), store(t), port, files, logFile, site{host: "localhost"}), "caddyfile")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			url := func(p string) string { return "https://localhost:" + strconv.Itoa(port) + p }

			a := &clientA{cache: newSessionCache(), logFile: logFile}
			a.tls = h3TLS(set, set.ClientA, "localhost", a.cache)
			cacheB := newSessionCache()
			cfgB := h3TLS(set, set.ClientB, "localhost", cacheB)
			h3Full(t, ctx, addr, url("/prime-a"), a.tls)
			h3Full(t, ctx, addr, url("/prime-b"), cfgB)
			control0RTT(t, ctx, addr, "localhost", a.tls, logFile, "/before-revoke", "client A before the revoke")

			revoke(t, tester.AdminURL("/tls_resume/revoke"), set.ClientA)
			requireFullRefused(t, ctx, set, set.ClientA, addr, "localhost")

			victimCheck(t, ctx, addr, "localhost", a, http.MethodGet, "/after-revoke", "", sentinelFor(t, ctx, set, addr, "localhost", logFile))
			control0RTT(t, ctx, addr, "localhost", cfgB, logFile, "/b-after-revoke", "client B after A's revoke")
		})
	}
}

// TestReloadedVerifierStopsEarlyData (issue 14, hole 1, second case): a
// config reload adds a client_cert verifier that excludes client A; a
// 0-RTT POST under A's old ticket is never executed and A gets no new
// ticket, while client B's old ticket still resumes with 0-RTT after the
// reload (so the ring, and the store, carried over). The stateful variant
// uses Redis: the memory store does not outlive a reload, which would
// refuse the ticket for the wrong reason.
func TestReloadedVerifierStopsEarlyData(t *testing.T) {
	for _, mode := range earlyModes {
		t.Run(mode.name, func(t *testing.T) {
			store := mode.storeLines
			if store == nil {
				store = redisStore
			}
			set, files := harness.NewPKI(t)
			tester := harness.NewTester(t)
			port := harness.FreePort(t)
			addr := harness.Addr(port)
			logFile := filepath.Join(t.TempDir(), "access.log")
			storageDir, kek, extra := t.TempDir(), newKEK(t), store(t)
			tester.InitServer(h3Config(storageDir, kek, extra, port, files, logFile, site{host: "localhost"}), "caddyfile")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			url := func(p string) string { return "https://localhost:" + strconv.Itoa(port) + p }

			a := &clientA{cache: newSessionCache(), logFile: logFile}
			a.tls = h3TLS(set, set.ClientA, "localhost", a.cache)
			cacheB := newSessionCache()
			cfgB := h3TLS(set, set.ClientB, "localhost", cacheB)
			h3Full(t, ctx, addr, url("/prime-a"), a.tls)
			h3Full(t, ctx, addr, url("/prime-b"), cfgB)
			control0RTT(t, ctx, addr, "localhost", a.tls, logFile, "/before-reload", "client A before the reload")

			tester.InitServer(h3Config(storageDir, kek, extra, port, files, logFile, site{host: "localhost", verifier: excludeA}), "caddyfile")
			requireFullRefused(t, ctx, set, set.ClientA, addr, "localhost")

			victimCheck(t, ctx, addr, "localhost", a, http.MethodPost, "/after-reload", "order=42", sentinelFor(t, ctx, set, addr, "localhost", logFile))
			control0RTT(t, ctx, addr, "localhost", cfgB, logFile, "/b-after-reload", "client B's pre-reload ticket after the reload")
		})
	}
}

// TestOtherHostVerifierStopsEarlyData (issue 14, hole 1, third case): with
// resume_across_hosts, site a admits both clients and site b's verifier
// refuses client A. A 0-RTT POST sent to b (SNI b) under A's ticket from a
// is never executed on b, and A gets no new ticket; client B's ticket from
// a does open on b with 0-RTT (the cross-host path is open).
func TestOtherHostVerifierStopsEarlyData(t *testing.T) {
	for _, mode := range earlyModes {
		t.Run(mode.name, func(t *testing.T) {
			store := mode.storeLines
			if store == nil {
				store = memoryStore
			}
			set, files := harness.NewPKI(t, "a.example.com", "b.example.com")
			tester := harness.NewTester(t)
			port := harness.FreePort(t)
			addr := harness.Addr(port)
			logFile := filepath.Join(t.TempDir(), "access.log")
			tester.InitServer(h3Config(t.TempDir(), newKEK(t), "\t\tresume_across_hosts\n"+store(t), port, files, logFile,
				site{host: "a.example.com"}, site{host: "b.example.com", verifier: excludeA}), "caddyfile")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			urlA := func(p string) string { return "https://a.example.com:" + strconv.Itoa(port) + p }

			// Client A on site a: admitted, and its ticket carries 0-RTT.
			cacheA := newSessionCache()
			cfgA := h3TLS(set, set.ClientA, "a.example.com", cacheA)
			h3Full(t, ctx, addr, urlA("/prime-a"), cfgA)
			control0RTT(t, ctx, addr, "a.example.com", cfgA, logFile, "/a-on-a", "client A on site a")
			requireFullRefused(t, ctx, set, set.ClientA, addr, "b.example.com")

			// Control: client B's ticket from site a resumes on site b
			// with 0-RTT.
			cacheB := newSessionCache()
			h3Full(t, ctx, addr, urlA("/prime-b"), h3TLS(set, set.ClientB, "a.example.com", cacheB))
			cfgBonB := h3TLS(set, set.ClientB, "b.example.com", offering(cacheB.last(t)))
			control0RTT(t, ctx, addr, "b.example.com", cfgBonB, logFile, "/b-ticket-from-a-on-b", "client B with site a's ticket on site b")

			// Client A carries its site-a ticket to site b.
			a := &clientA{cache: offering(cacheA.last(t)), logFile: logFile}
			a.tls = h3TLS(set, set.ClientA, "b.example.com", a.cache)
			victimCheck(t, ctx, addr, "b.example.com", a, http.MethodPost, "/a-ticket-on-b", "order=42", sentinelFor(t, ctx, set, addr, "b.example.com", logFile))
		})
	}
}
