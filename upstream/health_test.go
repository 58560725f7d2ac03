package upstream

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// TestStoreFullHandshakeSchedule: the cache's refusal logic, step by step
// on one key. fullEvery is 1m, the session lifetime 1h; times are offsets
// from t0.
func TestStoreFullHandshakeSchedule(t *testing.T) {
	const every = time.Minute
	t0 := time.Unix(1_700_000_000, 0)
	type step struct {
		at   time.Duration
		op   string // put, full, fail, get, nilput
		want bool   // get: a session is offered; full/fail/put: the streak result
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"no full handshake seen: refused", []step{
			{0, "put", false}, {time.Second, "get", false},
			// The refusal dropped the session: still nothing.
			{2 * time.Second, "get", false},
		}},
		{"TLS 1.3 order: full handshake, then the ticket", []step{
			{0, "full", false}, {0, "put", false}, {30 * time.Second, "get", true},
			{every, "get", true},
			{every + time.Nanosecond, "get", false}, // due
			{every + time.Second, "get", false},     // dropped until a full handshake
		}},
		{"TLS 1.2 order: the ticket, then the full handshake", []step{
			{0, "put", false}, {0, "full", false}, {59 * time.Second, "get", true},
		}},
		{"resumed tickets do not move the schedule", []step{
			{0, "full", false}, {0, "put", false},
			{40 * time.Second, "get", true}, {40 * time.Second, "put", false},
			{80 * time.Second, "get", false},
		}},
		{"a new full handshake restarts the schedule", []step{
			{0, "full", false}, {0, "put", false},
			{70 * time.Second, "get", false},
			{71 * time.Second, "full", false}, {71 * time.Second, "put", false},
			{2 * time.Minute, "get", true},
		}},
		{"failure streak: first failure reported once, success ends it", []step{
			{0, "full", false}, {0, "put", false},
			{10 * time.Second, "fail", true}, // first of a streak
			{11 * time.Second, "get", false}, // the session is gone
			{12 * time.Second, "fail", false},
			{13 * time.Second, "fail", false},
			{14 * time.Second, "full", true}, // recovered
			{15 * time.Second, "fail", true}, // a new streak
			{16 * time.Second, "put", true},  // a new session ends it too
		}},
		{"crypto/tls deleting the session keeps the schedule", []step{
			{0, "full", false}, {0, "put", false},
			{time.Second, "nilput", false}, {2 * time.Second, "get", false},
			{3 * time.Second, "put", false}, {4 * time.Second, "get", true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSessionStore(4)
			k := key("api.internal")
			for i, st := range tc.steps {
				now := t0.Add(st.at)
				var got bool
				switch st.op {
				case "put":
					got = s.put(k, session(), now)
				case "nilput":
					got = s.put(k, nil, now)
				case "full":
					got = s.markFull(k, now)
				case "fail":
					got = s.markFailed(k)
				case "get":
					_, got = s.lookup(k, time.Hour, every, now)
				}
				if got != st.want {
					t.Fatalf("step %d (%s at +%s): got %v, want %v", i, st.op, st.at, got, st.want)
				}
			}
		})
	}
}

// TestStoreWithoutScheduleIgnoresHealth: with fullEvery 0 the schedule is
// off; health-only entries never turn into sessions.
func TestStoreWithoutScheduleIgnoresHealth(t *testing.T) {
	now := time.Now()
	s := newSessionStore(2)
	s.markFull(key("a"), now)
	if _, ok := s.get(key("a"), time.Hour, now); ok {
		t.Fatal("a health-only entry was offered as a session")
	}
	s.put(key("b"), session(), now)
	if _, ok := s.get(key("b"), time.Hour, now.Add(time.Minute)); !ok {
		t.Fatal("session without a recorded full handshake refused with the schedule off")
	}
	// Health entries count towards capacity and are evicted like sessions.
	s.markFailed(key("c"))
	if n := s.len(); n != 2 {
		t.Fatalf("len %d, want 2", n)
	}
}

func TestHandshakeFailureClassification(t *testing.T) {
	verify := &tls.CertificateVerificationError{Err: errors.New("x509: certificate signed by unknown authority")}
	tests := []struct {
		err    error
		reason string
		ok     bool
	}{
		{verify, failCertificate, true},
		{fmt.Errorf("wrapped: %w", verify), failCertificate, true},
		{&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}, failAlert, true},
		{tls.AlertError(42), failAlert, true},
		{errors.New("net/http: TLS handshake timeout"), failTimeout, true},
		{tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, failOther, true},
		{errors.New("tls: server selected unsupported protocol version 301"), failOther, true},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, "", false},
		{errors.New("context canceled"), "", false},
		{nil, "", false},
	}
	for _, tc := range tests {
		reason, ok := handshakeFailure(tc.err)
		if reason != tc.reason || ok != tc.ok {
			t.Errorf("%v: got %q %v, want %q %v", tc.err, reason, ok, tc.reason, tc.ok)
		}
	}
}

// swappableCert serves whatever certificate it holds now; the backend's
// ticket keys do not change when it is swapped, so sessions made before
// the swap still resume.
type swappableCert struct {
	p atomic.Pointer[tls.Certificate]
}

func (s *swappableCert) set(c tls.Certificate) { s.p.Store(&c) }
func (s *swappableCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.p.Load(), nil
}

// untrustedServerCert is a certificate for 127.0.0.1 from a CA the
// transport does not trust.
func untrustedServerCert(t *testing.T) tls.Certificate {
	t.Helper()
	other, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	return other.Server.TLSCertificate()
}

// fakeClock is a settable clock for the session cache.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// roundTrip sends GET / through tr and returns the body or the error.
func roundTrip(tr http.RoundTripper, addr string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	if err != nil {
		return "", err
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b := make([]byte, 64)
	n, _ := resp.Body.Read(b)
	return string(b[:n]), nil
}

// TestTransportFullHandshakeEvery: a Go mTLS upstream swaps its certificate
// for one the transport does not trust, keeping its ticket keys. Without
// full_handshake_every, resumed connections keep succeeding (a resumed
// handshake carries no certificate, and Go re-checks only the stored
// chain). With it, the first connection after the interval does a full
// handshake, which fails certificate verification: the request fails, the
// failure is counted and logged once, and every later connection does a
// full handshake until the upstream is fixed.
func TestTransportFullHandshakeEvery(t *testing.T) {
	p := getPKI(t)
	for _, every := range []string{"", "1m"} {
		t.Run("full_handshake_every="+every, func(t *testing.T) {
			var cert swappableCert
			cert.set(p.set.Server.TLSCertificate())
			be := startBackend(t, tls.Certificate{}, func(c *tls.Config) {
				c.Certificates = nil
				c.GetCertificate = cert.get
			})
			extra := map[string]any{}
			if every != "" {
				extra["full_handshake_every"] = every
			}
			tr := provisionTransport(t, mtlsConfig(t, extra))
			clock := &fakeClock{now: time.Now()}
			cache := tr.Transport.TLSClientConfig.ClientSessionCache.(*sessionCache)
			cache.now = clock.Now
			logs, observed := observer.New(zapcore.InfoLevel)
			cache.logger = zap.New(logs)
			tr.health.logger = cache.logger
			failures := metrics.UpstreamHandshakeFailures.WithLabelValues(failCertificate)
			before := testutil.ToFloat64(failures)

			for i, want := range []string{"resumed=false", "resumed=true"} {
				if body, err := roundTrip(tr, be.Addr); err != nil || body != want {
					t.Fatalf("request %d: %q %v, want %s", i, body, err, want)
				}
			}
			cert.set(untrustedServerCert(t))
			clock.Add(30 * time.Second)
			if body, err := roundTrip(tr, be.Addr); err != nil || body != "resumed=true" {
				t.Fatalf("within the interval after the swap: %q %v, want a resumed success", body, err)
			}
			clock.Add(31 * time.Second) // 61s after the full handshake

			if every == "" {
				for i := 0; i < 3; i++ {
					if body, err := roundTrip(tr, be.Addr); err != nil || body != "resumed=true" {
						t.Fatalf("without the option, request %d after the swap: %q %v", i, body, err)
					}
				}
				if n := testutil.ToFloat64(failures) - before; n != 0 {
					t.Errorf("%v failures counted", n)
				}
				return
			}

			for i := 0; i < 3; i++ {
				_, err := roundTrip(tr, be.Addr)
				var verr *tls.CertificateVerificationError
				if !errors.As(err, &verr) {
					t.Fatalf("request %d after the interval: error %v, want a certificate verification error", i, err)
				}
			}
			if n := testutil.ToFloat64(failures) - before; n != 3 {
				t.Errorf("%v certificate failures counted, want 3", n)
			}
			errs := observed.FilterMessage("upstream TLS handshake failed").All()
			if len(errs) != 1 || errs[0].Level != zapcore.ErrorLevel {
				t.Fatalf("failure logged %d times, want once at ERROR: %v", len(errs), errs)
			}
			if f := errs[0].ContextMap(); f["upstream"] != be.Addr || f["server_name"] != "127.0.0.1" || f["reason"] != failCertificate {
				t.Errorf("log fields: %v", f)
			}

			// The upstream is fixed: the next connection is a full
			// handshake, which succeeds and restarts resumption.
			cert.set(p.set.Server.TLSCertificate())
			for i, want := range []string{"resumed=false", "resumed=true"} {
				if body, err := roundTrip(tr, be.Addr); err != nil || body != want {
					t.Fatalf("after the fix, request %d: %q %v, want %s", i, body, err, want)
				}
			}
			if n := observed.FilterMessage("upstream TLS handshakes succeed again").Len(); n != 1 {
				t.Errorf("recovery logged %d times, want once", n)
			}
		})
	}
}

// TestTransportFullHandshakeEveryAllocs measures what watching every
// request costs on a pooled connection (no handshake): the trace, its
// closure, the context value and the request copy.
func TestTransportFullHandshakeEveryAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	p := getPKI(t)
	be := startBackend(t, p.set.Server.TLSCertificate(), nil)
	cfg := mtlsConfig(t, map[string]any{"full_handshake_every": "1m"})
	cfg["keep_alive"] = map[string]any{"enabled": true}
	tr := provisionTransport(t, cfg)
	if _, err := roundTrip(tr, be.Addr); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := roundTrip(tr, be.Addr); err != nil {
			t.Fatal(err)
		}
	})
	delete(cfg, "full_handshake_every")
	tr0 := provisionTransport(t, cfg)
	if _, err := roundTrip(tr0, be.Addr); err != nil {
		t.Fatal(err)
	}
	allocs0 := testing.AllocsPerRun(200, func() {
		if _, err := roundTrip(tr0, be.Addr); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per pooled round trip: %.0f with full_handshake_every, %.0f without", allocs, allocs0)
	if d := allocs - allocs0; d > 5 {
		t.Errorf("full_handshake_every adds %.0f allocations per request, want at most 5", d)
	}
	if be.handshakes.Load() != 2 {
		t.Errorf("%d handshakes, want 2 (one per transport, then pooled)", be.handshakes.Load())
	}
}
