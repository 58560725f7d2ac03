package tlsresume

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/storage"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// countingCache counts the tickets a client receives.
type countingCache struct {
	tls.ClientSessionCache
	puts atomic.Int64
}

func (c *countingCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.puts.Add(1)
	}
	c.ClientSessionCache.Put(key, cs)
}

// A client refused by the policy's verification or by the deny list must
// be refused before its ticket is accepted: no resumption, and so no new
// ticket (on a resumed TLS 1.3 handshake Go sends the ticket before it
// calls VerifyConnection), and the refusal counted as the ticket's
// rejection reason.
func TestRefusedSessionGetsNoTicket(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	for _, tc := range []struct {
		name   string
		reason rejection
		refuse func(ts *testServer, doc *keyring.Document)
	}{
		{"verifier", rejectVerifier, func(ts *testServer, _ *keyring.Document) { ts.refuse.Store(true) }},
		{"revoked", rejectRevoked, func(ts *testServer, doc *keyring.Document) {
			sum := sha256.Sum256(set.ClientA.Cert.Raw)
			d := doc.Clone()
			d.Denied = []keyring.DeniedCert{{SHA256: hex.EncodeToString(sum[:])}}
			nr, err := keyring.NewSnapshot(d, testSchedule())
			if err != nil {
				t.Fatal(err)
			}
			ts.rings.Store(nr)
		}},
	} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tc.name+"/"+tls.VersionName(v), func(t *testing.T) {
				r, doc := testRing(t)
				ts := newTestServer(t, set, v, r)
				cache := &countingCache{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
				cfg := clientConfig(set, set.ClientA, cache)
				if _, err := dial(t, ts.addr, cfg); err != nil {
					t.Fatal(err)
				}
				if cs, err := dial(t, ts.addr, cfg); err != nil || !cs.DidResume {
					t.Fatalf("control: resumed=%v err=%v", cs.DidResume, err)
				}
				tickets := cache.puts.Load()
				before := testutil.ToFloat64(rejectionCounters[tc.reason])
				tc.refuse(ts, doc)
				if cs, err := dial(t, ts.addr, cfg); err == nil {
					t.Fatalf("refused client connected (resumed=%v)", cs.DidResume)
				}
				if got := cache.puts.Load(); got != tickets {
					t.Errorf("refused client received %d new tickets", got-tickets)
				}
				if d := testutil.ToFloat64(rejectionCounters[tc.reason]) - before; d < 1 {
					t.Errorf("ticket_rejections_total{reason=%q} grew by %v, want ≥ 1", tc.reason, d)
				}
			})
		}
	}
}

// The policy's verification sees, before the ticket is accepted, exactly
// the chain it saw on the full handshake: leaf first, the verified chains,
// the SNI, and DidResume.
func TestAdmitHandsVerifierTheSessionChain(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	r, _ := testRing(t)
	var (
		mu   sync.Mutex
		seen []tls.ConnectionState
	)
	ts := newTestServer(t, set, tls.VersionTLS13, r, func(b *policyBinding) {
		inner := b.verifyConnection
		b.verifyConnection = func(cs tls.ConnectionState) error {
			mu.Lock()
			seen = append(seen, cs)
			mu.Unlock()
			return inner(cs)
		}
	})
	cfg := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
	for range 2 {
		if _, err := dial(t, ts.addr, cfg); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("verification ran %d times, want once per handshake", len(seen))
	}
	full, resumed := seen[0], seen[1]
	if full.DidResume || !resumed.DidResume || resumed.ServerName != "localhost" {
		t.Fatalf("DidResume %v/%v, SNI %q", full.DidResume, resumed.DidResume, resumed.ServerName)
	}
	if len(resumed.PeerCertificates) != len(full.PeerCertificates) || !resumed.PeerCertificates[0].Equal(set.ClientA.Cert) {
		t.Fatalf("resumed peer chain %d certs, full %d", len(resumed.PeerCertificates), len(full.PeerCertificates))
	}
	if len(resumed.VerifiedChains) != len(full.VerifiedChains) || len(resumed.VerifiedChains[0]) != len(full.VerifiedChains[0]) {
		t.Fatalf("verified chains differ: %d vs %d", len(resumed.VerifiedChains), len(full.VerifiedChains))
	}
	for i, c := range full.VerifiedChains[0] {
		if !resumed.VerifiedChains[0][i].Equal(c) {
			t.Fatalf("verified chain differs at %d", i)
		}
	}
}

// ticket_lifetime bounds the time since the client's last full handshake:
// a client resuming every third of the lifetime, each time with its newest
// ticket, must do a full handshake once the lifetime has passed, on TLS 1.2
// and 1.3, stateless and with a session store.
func TestLifetimeBoundsAuthenticationAge(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	const lifetime = 6 * time.Second
	for _, stored := range []bool{false, true} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			name := tls.VersionName(v) + "/stateless"
			if stored {
				name = tls.VersionName(v) + "/memory"
			}
			t.Run(name, func(t *testing.T) {
				r, _ := testRing(t)
				var clock atomic.Int64
				clock.Store(time.Now().UnixNano()) // certificates are valid now, not at t0
				now := func() time.Time { return time.Unix(0, clock.Load()) }
				ts := newTestServer(t, set, v, r, func(b *policyBinding) {
					b.lifetime = int64(lifetime / time.Second)
					b.now = now
					if stored {
						b.sessions = testSessions(t, memoryStore(t, 64), lifetime)
					}
				})
				ts.cfg.Time = now // Go's created_at and checks on the same clock
				cfg := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
				var fullAt []time.Duration
				for i := range 10 { // 10 × lifetime/3 = 3⅓ lifetimes
					cs, err := dial(t, ts.addr, cfg)
					if err != nil {
						t.Fatal(err)
					}
					if !cs.DidResume {
						fullAt = append(fullAt, time.Duration(i)*lifetime/3)
					}
					clock.Add(int64(lifetime / 3))
				}
				// Full handshakes at 0, then at least once per lifetime.
				if len(fullAt) < 3 {
					t.Fatalf("full handshakes at %v: the session was resumed past its lifetime", fullAt)
				}
				for i := 1; i < len(fullAt); i++ {
					if gap := fullAt[i] - fullAt[i-1]; gap > lifetime+lifetime/3 {
						t.Fatalf("full handshakes at %v: %s between two", fullAt, gap)
					}
				}
				if len(fullAt) > 5 {
					t.Fatalf("full handshakes at %v: resumption barely worked", fullAt)
				}
			})
		}
	}
}

// testSessions puts store behind a binding with generous budgets.
func testSessions(t testing.TB, store storage.SessionStore, lifetime time.Duration) *sessions {
	t.Helper()
	opts, err := SessionStorePolicy{Budget: caddy.Duration(time.Second)}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newSessions(store, opts, lifetime, zap.NewNop())
}
