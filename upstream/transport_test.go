package upstream

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// handshakeCounts reads the upstream handshake counters (process-global).
func handshakeCounts() (resumed, full float64) {
	return testutil.ToFloat64(metrics.UpstreamHandshakes.WithLabelValues("true")),
		testutil.ToFloat64(metrics.UpstreamHandshakes.WithLabelValues("false"))
}

func TestTransportResumesAgainstGoServer(t *testing.T) {
	p := getPKI(t)
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			be := startBackend(t, p.set.Server.TLSCertificate(), func(c *tls.Config) { c.MaxVersion = version })
			tr := provisionTransport(t, mtlsConfig(t, nil))
			r0, f0 := handshakeCounts()

			const n = 40
			for i := 0; i < n; i++ {
				body := get(t, tr, be.Addr)
				if want := "resumed=" + boolString(i > 0); body != want {
					t.Fatalf("request %d: backend says %q, want %q", i, body, want)
				}
			}
			if got := be.handshakes.Load(); got != n {
				t.Fatalf("backend saw %d handshakes for %d requests; keep-alive should be off", got, n)
			}
			if got := be.resumed.Load(); got != n-1 {
				t.Errorf("backend resumed %d of %d handshakes, want %d", got, n, n-1)
			}
			r1, f1 := handshakeCounts()
			if r1-r0 != n-1 || f1-f0 != 1 {
				t.Errorf("metric deltas resumed=%v full=%v, want %d and 1", r1-r0, f1-f0, n-1)
			}
		})
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestTransportSessionReuseOff(t *testing.T) {
	p := getPKI(t)
	be := startBackend(t, p.set.Server.TLSCertificate(), nil)
	tr := provisionTransport(t, mtlsConfig(t, map[string]any{"session_reuse": false}))
	if tr.Transport.TLSClientConfig.ClientSessionCache != nil {
		t.Fatal("session_reuse false still installed a session cache")
	}
	if tr.storeKey != "" {
		t.Fatal("session_reuse false acquired a session store")
	}
	r0, f0 := handshakeCounts()
	for i := 0; i < 5; i++ {
		if body := get(t, tr, be.Addr); body != "resumed=false" {
			t.Fatalf("request %d: %s", i, body)
		}
	}
	if got := be.offered.Load(); got != 0 {
		t.Errorf("client offered %d tickets with reuse off", got)
	}
	r1, f1 := handshakeCounts()
	if r1 != r0 || f1-f0 != 5 {
		t.Errorf("metric deltas resumed=%v full=%v, want 0 and 5 (handshakes are counted with reuse off)", r1-r0, f1-f0)
	}
}

func TestTransportDefaultsAndInstall(t *testing.T) {
	tr := provisionTransport(t, mtlsConfig(t, nil))
	if tr.SessionCacheSize != defaultSessionCacheSize || time.Duration(tr.SessionLifetime) != defaultSessionLifetime {
		t.Errorf("defaults: size %d lifetime %s", tr.SessionCacheSize, time.Duration(tr.SessionLifetime))
	}
	cfg := tr.Transport.TLSClientConfig
	sc, ok := cfg.ClientSessionCache.(*sessionCache)
	if !ok {
		t.Fatalf("ClientSessionCache is %T", cfg.ClientSessionCache)
	}
	if sc.lifetime != defaultSessionLifetime || sc.store.capacity() != defaultSessionCacheSize {
		t.Errorf("cache lifetime %s capacity %d", sc.lifetime, sc.store.capacity())
	}
	if cfg.VerifyConnection == nil {
		t.Error("VerifyConnection (handshake counter) not installed")
	}
	if cfg.RootCAs == nil || len(cfg.Certificates) != 1 {
		t.Error("Caddy's TLS settings (trust pool, client certificate) were lost")
	}
	if tr.h3 != nil {
		t.Error("HTTP/3 transport built without versions [3]")
	}

	// The same configuration yields the same identity; another client
	// certificate another one.
	again := provisionTransport(t, mtlsConfig(t, nil))
	if again.Transport.TLSClientConfig.ClientSessionCache.(*sessionCache).identity != sc.identity {
		t.Error("equal configurations must share an identity")
	}
	p := getPKI(t)
	other := provisionTransport(t, mtlsConfig(t, map[string]any{"tls": map[string]any{
		"client_certificate_file": p.files.ClientBCert, "client_certificate_key_file": p.files.ClientBKey,
	}}))
	if other.Transport.TLSClientConfig.ClientSessionCache.(*sessionCache).identity == sc.identity {
		t.Error("a different client certificate must give a different identity")
	}
}

func TestTransportWithoutTLS(t *testing.T) {
	tr := provisionTransport(t, map[string]any{})
	if cfg := tr.Transport.TLSClientConfig; tr.storeKey != "" || (cfg != nil && (cfg.ClientSessionCache != nil || cfg.VerifyConnection != nil)) {
		t.Error("plain HTTP transport should get no session cache, counter or store")
	}
	// An empty tls block: Caddy builds no TLS config, we install one.
	tr = provisionTransport(t, map[string]any{"tls": map[string]any{}, "versions": []string{"1.1"}})
	cfg := tr.Transport.TLSClientConfig
	if cfg == nil || cfg.ClientSessionCache == nil || cfg.VerifyConnection == nil {
		t.Errorf("empty tls block: config %+v", cfg)
	}
}

func TestTransportConfigErrors(t *testing.T) {
	tests := []struct {
		json string
		want string
	}{
		{`{"session_cache_size": -1}`, "session_cache_size: must be a positive number of sessions, got -1"},
		{`{"session_lifetime": "-1s"}`, "session_lifetime: must be a positive duration, got -1s"},
		{`{"session_lifetime": "169h"}`, "session_lifetime: 169h0m0s exceeds the 168h0m0s"},
		{`{"session_lifetime": "soon"}`, "soon"},
		{`{"session_reuse": "yes"}`, "session_reuse"},
		{`{"session_cache": 10}`, `unknown field "session_cache"`},
		{`{"tls": {}, "full_handshake_every": "-1m"}`, "full_handshake_every: must be a positive duration, got -1m0s"},
		{`{"tls": {}, "full_handshake_every": "500ms"}`, "full_handshake_every: 500ms is shorter than the 1s minimum"},
		{`{"tls": {}, "full_handshake_every": "30m"}`, "full_handshake_every: 30m0s is not shorter than session_lifetime (30m0s)"},
		{`{"tls": {}, "full_handshake_every": "5m", "session_lifetime": "2m"}`, "full_handshake_every: 5m0s is not shorter than session_lifetime (2m0s)"},
		{`{"tls": {}, "full_handshake_every": "1m", "session_reuse": false}`, "full_handshake_every: 1m0s has no effect with session_reuse off"},
		{`{"full_handshake_every": "1m"}`, "full_handshake_every: 1m0s needs TLS to the upstream"},
		{`{"tls": {}, "full_handshake_every": "1m", "versions": ["3"]}`, "full_handshake_every: 1m0s is not supported with HTTP/3 upstreams"},
		// Caddy's own validation still applies.
		{`{"versions": ["4"]}`, "unsupported HTTP version: 4"},
		{`{"tls": {"renegotiation": "sometimes"}}`, "invalid TLS renegotiation level: sometimes"},
		{`{"tls": {"client_certificate_file": "/nonexistent/c.pem", "client_certificate_key_file": "/nonexistent/c.key"}}`, "loading client certificate key pair"},
	}
	for _, tc := range tests {
		_, err := loadTransport(t, []byte(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to contain %q", tc.json, err, tc.want)
		}
	}
}

// TestTransportSessionsKeyedByNameAndIdentity: two upstreams share ticket
// keys, so each would accept the other's tickets; the cache must still never
// offer a session to another server name, nor under another client
// certificate.
func TestTransportSessionsKeyedByNameAndIdentity(t *testing.T) {
	p := getPKI(t)
	var ticketKey [32]byte
	copy(ticketKey[:], "shared ticket key for both hosts")
	shareKeys := func(c *tls.Config) { c.SetSessionTicketKeys([][32]byte{ticketKey}) }
	// The test PKI's server certificate covers a.internal and b.internal.
	a := startBackend(t, p.set.Server.TLSCertificate(), shareKeys)
	b := startBackend(t, p.set.Server.TLSCertificate(), shareKeys)

	trA := provisionTransport(t, mtlsConfig(t, map[string]any{"tls": map[string]any{"server_name": "a.internal"}}))
	trB := provisionTransport(t, mtlsConfig(t, map[string]any{"tls": map[string]any{"server_name": "b.internal"}}))
	if trA.Transport.TLSClientConfig.ClientSessionCache.(*sessionCache).store != trB.Transport.TLSClientConfig.ClientSessionCache.(*sessionCache).store {
		t.Fatal("test premise: both transports should share one store")
	}
	for i := 0; i < 5; i++ {
		get(t, trA, a.Addr)
	}
	if a.resumed.Load() != 4 {
		t.Fatalf("a.internal resumed %d of 5", a.resumed.Load())
	}
	// First connection to b.internal: nothing may be offered.
	get(t, trB, b.Addr)
	if n := b.offered.Load(); n != 0 {
		t.Fatalf("a.internal's session was offered to b.internal (%d tickets)", n)
	}
	// Same server name, other client identity: nothing offered either.
	trA2 := provisionTransport(t, mtlsConfig(t, map[string]any{"tls": map[string]any{
		"server_name":             "a.internal",
		"client_certificate_file": p.files.ClientBCert, "client_certificate_key_file": p.files.ClientBKey,
	}}))
	before := a.offered.Load()
	get(t, trA2, a.Addr)
	if n := a.offered.Load() - before; n != 0 {
		t.Fatalf("client A's session was offered under client certificate B (%d tickets)", n)
	}
	// The same name on the other upstream (shared keys) does resume: that is
	// how upstreams sharing a ring resume each other's sessions.
	before = b.resumed.Load()
	get(t, trA, b.Addr)
	if b.resumed.Load()-before != 1 {
		t.Fatal("a session for a.internal was not resumed by another upstream sharing its ticket keys")
	}
}

func TestTransportSessionLifetime(t *testing.T) {
	p := getPKI(t)
	be := startBackend(t, p.set.Server.TLSCertificate(), nil)
	tr := provisionTransport(t, mtlsConfig(t, map[string]any{"session_lifetime": "50ms"}))
	get(t, tr, be.Addr)
	time.Sleep(120 * time.Millisecond)
	if body := get(t, tr, be.Addr); body != "resumed=false" {
		t.Fatalf("expired session resumed: %s", body)
	}
	if n := be.offered.Load(); n != 0 {
		t.Fatalf("expired session offered (%d tickets)", n)
	}
	// The fresh session is offered right away.
	if body := get(t, tr, be.Addr); body != "resumed=true" {
		t.Fatalf("fresh session not resumed: %s", body)
	}
}

func TestTransportCertificateChanged(t *testing.T) {
	p := getPKI(t)
	be := startBackend(t, p.set.Server.TLSCertificate(), nil)
	tr := provisionTransport(t, mtlsConfig(t, nil))
	get(t, tr, be.Addr)
	if body := get(t, tr, be.Addr); body != "resumed=true" {
		t.Fatalf("no resumption before the change: %s", body)
	}
	// The upstream restarts on the same address with a new key and
	// certificate and new ticket keys.
	addr := be.Addr
	_ = be.srv.Close()
	leaf, err := p.set.Intermediate.IssueServer(pki.Options{CommonName: "localhost", IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	be2 := startBackendAt(t, addr, leaf.TLSCertificate())
	if body := get(t, tr, be2.Addr); body != "resumed=false" {
		t.Fatalf("after certificate change: %s", body)
	}
	if body := get(t, tr, be2.Addr); body != "resumed=true" {
		t.Fatalf("new session not resumed: %s", body)
	}
}

// startBackendAt is startBackend on a given address (retrying briefly while
// the old listener's port is released).
func startBackendAt(t *testing.T, addr string, cert tls.Certificate) *backend {
	t.Helper()
	var lastErr error
	for i := 0; i < 50; i++ {
		b, err := serveBackend(t, addr, cert, nil)
		if err == nil {
			return b
		}
		lastErr = err
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("address %s not free again: %v", addr, lastErr)
	return nil
}

func TestVerifyAndCount(t *testing.T) {
	deny := errors.New("denied by the configured verifier")
	tests := []struct {
		name        string
		next        func(tls.ConnectionState) error
		didResume   bool
		wantErr     error
		wantResumed float64
		wantFull    float64
	}{
		{"full, no previous", nil, false, nil, 0, 1},
		{"resumed, no previous", nil, true, nil, 1, 0},
		{"resumed, previous accepts", func(tls.ConnectionState) error { return nil }, true, nil, 1, 0},
		{"resumed, previous denies", func(tls.ConnectionState) error { return deny }, true, deny, 0, 0},
		{"full, previous denies", func(tls.ConnectionState) error { return deny }, false, deny, 0, 0},
	}
	for _, tc := range tests {
		resumed := prometheus.NewCounter(prometheus.CounterOpts{Name: "r"})
		full := prometheus.NewCounter(prometheus.CounterOpts{Name: "f"})
		err := verifyAndCount(tc.next, resumed, full)(tls.ConnectionState{DidResume: tc.didResume})
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
		}
		if r, f := testutil.ToFloat64(resumed), testutil.ToFloat64(full); r != tc.wantResumed || f != tc.wantFull {
			t.Errorf("%s: counted resumed=%v full=%v, want %v/%v", tc.name, r, f, tc.wantResumed, tc.wantFull)
		}
	}
}

// TestTransportHTTP3 checks that versions [3] gets the session cache too,
// with a QUIC-only identity, and resumes against a real HTTP/3 server.
func TestTransportHTTP3(t *testing.T) {
	p := getPKI(t)
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{}, 64)
	srvCfg := http3.ConfigureTLSConfig(&tls.Config{
		Certificates: []tls.Certificate{p.set.Server.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.set.Root.Pool(),
	})
	srv := &http3.Server{
		TLSConfig: srvCfg,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "resumed="+boolString(r.TLS.DidResume))
			done <- struct{}{}
		}),
	}
	go func() { _ = srv.Serve(udp) }()
	t.Cleanup(func() { _ = srv.Close() })

	tr := provisionTransport(t, mtlsConfig(t, map[string]any{"versions": []string{"3"}}))
	if tr.h3 == nil {
		t.Fatal("no HTTP/3 transport")
	}
	h3c := tr.h3.TLSClientConfig.ClientSessionCache.(*sessionCache)
	tcp := tr.Transport.TLSClientConfig.ClientSessionCache.(*sessionCache)
	if h3c.identity == tcp.identity {
		t.Error("QUIC sessions must be keyed apart from TCP sessions")
	}
	if tr.h3.TLSClientConfig.RootCAs == nil || len(tr.h3.TLSClientConfig.Certificates) != 1 || tr.h3.TLSClientConfig.VerifyConnection == nil {
		t.Error("HTTP/3 TLS config lost the trust pool, client certificate or counter")
	}
	if raceEnabled {
		// quic-go v0.59.1 has a data race of its own on resumed
		// connections: http3 opens its control stream while the handshake
		// is still in flight (streamsMap.supportsResetStreamAt, read in
		// openStream, written in HandleTransportParameters); quic-go
		// reworked that code after v0.59 (quic-go pull request 5715).
		t.Skip("HTTP/3 round trips skipped under -race: known quic-go v0.59.1 race on resumed connections")
	}
	r0, _ := handshakeCounts()
	const n = 5
	for i := 0; i < n; i++ {
		body := get(t, tr, udp.LocalAddr().String())
		<-done
		if want := "resumed=" + boolString(i > 0); body != want {
			t.Fatalf("request %d over HTTP/3: %q, want %q", i, body, want)
		}
		// Force a new QUIC connection for the next request.
		tr.h3.CloseIdleConnections()
	}
	if r1, _ := handshakeCounts(); r1-r0 != n-1 {
		t.Errorf("resumed metric delta %v, want %d", r1-r0, n-1)
	}
}
