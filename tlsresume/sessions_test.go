package tlsresume

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
	"github.com/tlsresume/caddy-tlsresume/storage"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// withStore makes a test server's binding stateful on store. Its clock
// runs from t0+1m at real speed, so that the circuit breaker's cool-down
// passes.
func withStore(t testing.TB, store storage.SessionStore, opts SessionStorePolicy) func(*policyBinding) {
	t.Helper()
	if opts.Budget == 0 {
		// Tests that are not about the budget must not fail because a
		// loaded machine (CI, parallel packages) answered in 60ms.
		opts.Budget = caddy.Duration(2 * time.Second)
	}
	o, err := opts.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	s := newSessions(store, o, 10*time.Minute, zap.NewNop())
	return func(b *policyBinding) {
		b.sessions = s
		start := time.Now()
		b.now = func() time.Time { return t0.Add(time.Minute + time.Since(start)) }
	}
}

func redisStore(t testing.TB, srv *testredis.Server) *storage.RedisStore {
	t.Helper()
	return provisionStore(t, &storage.RedisStore{Addresses: []string{srv.Addr}})
}

func memoryStore(t testing.TB, maxEntries int) *storage.MemoryStore {
	t.Helper()
	return provisionStore(t, &storage.MemoryStore{MaxEntries: maxEntries})
}

// provisionStore provisions a session store module as Caddy would, and
// cleans it up with the test.
func provisionStore[S interface {
	storage.SessionStore
	caddy.Provisioner
	caddy.Validator
	caddy.CleanerUpper
}](t testing.TB, s S) S {
	t.Helper()
	if err := s.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Cleanup() })
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	return s
}

// recordingCache is a client session cache that remembers the last ticket
// it was given, so tests can look at it and replay it.
type recordingCache struct {
	tls.ClientSessionCache
	mu   sync.Mutex
	key  string
	last *tls.ClientSessionState
}

func newRecordingCache() *recordingCache {
	return &recordingCache{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
}

func (c *recordingCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.mu.Lock()
		c.key, c.last = key, cs
		c.mu.Unlock()
	}
	c.ClientSessionCache.Put(key, cs)
}

func (c *recordingCache) ticket(t testing.TB) []byte {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		t.Fatal("client holds no ticket")
	}
	ticket, _, err := c.last.ResumptionState()
	if err != nil {
		t.Fatal(err)
	}
	return ticket
}

// replica returns a new cache holding only the last ticket of c.
func (c *recordingCache) replica() tls.ClientSessionCache {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := tls.NewLRUClientSessionCache(1)
	r.Put(c.key, c.last)
	return r
}

func mustDial(t *testing.T, addr string, cfg *tls.Config) tls.ConnectionState {
	t.Helper()
	cs, err := dial(t, addr, cfg)
	if err != nil {
		t.Fatalf("connection failed: %v", err)
	}
	return cs
}

func rejections(reason rejection) float64 {
	return testutil.ToFloat64(metrics.TicketRejections.WithLabelValues(reason.String()))
}

func TestStoredSessionResumption(t *testing.T) {
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	srv := testredis.Must(t)
	for name, store := range map[string]storage.SessionStore{
		"memory": memoryStore(t, 100),
		"redis":  redisStore(t, srv),
	} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(name+"/"+tls.VersionName(v), func(t *testing.T) {
				r, _ := testRing(t)
				ts := newTestServer(t, set, v, r, withStore(t, store, SessionStorePolicy{}))
				cache := newRecordingCache()
				cfg := clientConfig(set, set.ClientA, cache)
				if mustDial(t, ts.addr, cfg).DidResume {
					t.Fatal("first connection resumed")
				}
				// The client holds only a handle.
				if tk := cache.ticket(t); len(tk) != storeTicketLen || tk[0] != storeTicketVersion {
					t.Fatalf("client ticket is %d bytes, version %d; want a %d-byte handle", len(tk), tk[0], storeTicketLen)
				}
				if !mustDial(t, ts.addr, cfg).DidResume {
					t.Fatal("second connection did not resume through the store")
				}
				if n := ts.verified.Load(); n != 2 {
					t.Errorf("policy verifiers ran %d times, want 2", n)
				}
			})
		}
	}
}

// TestStoredSessionsAcrossNodes: two nodes sharing a ring and a Redis
// resume each other's sessions; what Redis holds is sealed.
func TestStoredSessionsAcrossNodes(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	srv := testredis.Must(t)
	r, _ := testRing(t)
	a := newTestServer(t, set, tls.VersionTLS13, r, withStore(t, redisStore(t, srv), SessionStorePolicy{}))
	b := newTestServer(t, set, tls.VersionTLS13, r, withStore(t, redisStore(t, srv), SessionStorePolicy{}))
	cache := newRecordingCache()
	cfg := clientConfig(set, set.ClientA, cache)
	mustDial(t, a.addr, cfg)
	if !mustDial(t, b.addr, cfg).DidResume {
		t.Fatal("node B did not resume node A's session")
	}
	if !mustDial(t, a.addr, cfg).DidResume {
		t.Fatal("node A did not resume node B's session")
	}

	// The stored value is a sealed ticket, not session state: it opens
	// only with the ring, and the handle is not its key.
	rs := redisStore(t, srv)
	handle := cache.ticket(t)[1:]
	sealed, err := rs.Get(context.Background(), storeID(handle))
	if err != nil {
		t.Fatal(err)
	}
	if sealed[0] != ticketVersion {
		t.Fatalf("stored value has version %d, want a sealed ticket", sealed[0])
	}
	if _, err := rs.Get(context.Background(), handle); err != storage.ErrMiss {
		t.Fatalf("the raw handle is a store key: %v", err)
	}
}

func TestStoredSessionsRevokedAndInvalidated(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	srv := testredis.Must(t)
	store := redisStore(t, srv)
	r, _ := testRing(t)
	ts := newTestServer(t, set, tls.VersionTLS13, r, withStore(t, store, SessionStorePolicy{}))
	cfgA := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
	cfgB := clientConfig(set, set.ClientB, tls.NewLRUClientSessionCache(8))
	for _, cfg := range []*tls.Config{cfgA, cfgB} {
		mustDial(t, ts.addr, cfg)
	}
	misses := rejections(rejectStoreMiss)
	n, err := store.RevokeLeaf(context.Background(), sha256.Sum256(set.ClientA.Cert.Raw))
	if err != nil || n != 1 {
		t.Fatalf("RevokeLeaf = %d, %v; want 1", n, err)
	}
	if mustDial(t, ts.addr, cfgA).DidResume {
		t.Fatal("revoked client's session resumed")
	}
	if !mustDial(t, ts.addr, cfgB).DidResume {
		t.Fatal("other client's session did not resume")
	}
	if got := rejections(rejectStoreMiss) - misses; got != 1 {
		t.Errorf("store_miss rejections grew by %v, want 1", got)
	}
	if err := store.InvalidateAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []*tls.Config{cfgA, cfgB} {
		if mustDial(t, ts.addr, cfg).DidResume {
			t.Fatal("session resumed after InvalidateAll")
		}
	}
}

func TestStoredSessionsSingleUse(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	srv := testredis.Must(t)
	for _, single := range []bool{false, true} {
		r, _ := testRing(t)
		ts := newTestServer(t, set, tls.VersionTLS13, r, withStore(t, redisStore(t, srv), SessionStorePolicy{SingleUse: single}))
		cache := newRecordingCache()
		mustDial(t, ts.addr, clientConfig(set, set.ClientA, cache))
		copy1, copy2 := cache.replica(), cache.replica()
		if !mustDial(t, ts.addr, clientConfig(set, set.ClientA, copy1)).DidResume {
			t.Fatalf("single_use=%v: first use of the ticket did not resume", single)
		}
		if again := mustDial(t, ts.addr, clientConfig(set, set.ClientA, copy2)).DidResume; again == single {
			t.Fatalf("single_use=%v: second use of the same ticket resumed=%v", single, again)
		}
	}
}

// TestStoredSessionEarlyDataOnce: a session that carries 0-RTT gets early
// data on its first resumption only, across nodes sharing Redis; later
// resumptions still succeed, without early data.
func TestStoredSessionEarlyDataOnce(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	srv := testredis.Must(t)
	r, _ := testRing(t)
	nodeA := newTestServer(t, set, tls.VersionTLS13, r, withStore(t, redisStore(t, srv), SessionStorePolicy{})).binding
	nodeB := newTestServer(t, set, tls.VersionTLS13, r, withStore(t, redisStore(t, srv), SessionStorePolicy{})).binding
	ss := realSessionState(t)
	ss.EarlyData = true
	cs := tls.ConnectionState{ServerName: "localhost", PeerCertificates: []*x509.Certificate{set.ClientA.Cert}}
	ticket, err := nodeA.wrapSession(cs, ss)
	if err != nil || ticket[0] != storeTicketVersion {
		t.Fatalf("wrapSession = %x, %v", ticket, err)
	}
	replayed := testutil.ToFloat64(metrics.StoreOperations.WithLabelValues("claim_early_data", "replayed"))
	for i, node := range []*policyBinding{nodeB, nodeA, nodeB} {
		got, err := node.unwrapSession(ticket, cs)
		if err != nil || got == nil {
			t.Fatalf("resumption %d: %v, %v", i, got, err)
		}
		if want := i == 0; got.EarlyData != want {
			t.Fatalf("resumption %d: EarlyData = %v, want %v", i, got.EarlyData, want)
		}
	}
	if d := testutil.ToFloat64(metrics.StoreOperations.WithLabelValues("claim_early_data", "replayed")) - replayed; d != 2 {
		t.Errorf("replayed claims counted %v, want 2", d)
	}
}

// TestStoredSessionsRedisFaults: with Redis killed or hung, every
// connection still succeeds with a full handshake within the budget (never
// an error); the breaker opens, and resumption returns by itself with
// Redis. With fallback stateless, sessions keep resuming meanwhile.
func TestStoredSessionsRedisFaults(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	for _, fallback := range []string{fallbackFull, fallbackStateless} {
		t.Run(fallback, func(t *testing.T) {
			srv := testredis.Must(t)
			r, _ := testRing(t)
			opts := SessionStorePolicy{
				// Well above loopback Redis latency on a loaded
				// machine, far below the socket timeouts.
				Budget:           caddy.Duration(200 * time.Millisecond),
				Fallback:         fallback,
				BreakerThreshold: 3,
				BreakerCooldown:  caddy.Duration(300 * time.Millisecond),
			}
			// Socket timeouts far beyond the budget: only the budget
			// bounds a handshake.
			store := provisionStore(t, &storage.RedisStore{
				Addresses:   []string{srv.Addr},
				DialTimeout: caddy.Duration(10 * time.Second), ReadTimeout: caddy.Duration(10 * time.Second), WriteTimeout: caddy.Duration(10 * time.Second),
			})
			ts := newTestServer(t, set, tls.VersionTLS13, r, withStore(t, store, opts))
			cfg := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
			mustDial(t, ts.addr, cfg)
			if !mustDial(t, ts.addr, cfg).DidResume {
				t.Fatal("no resumption with Redis up")
			}

			for _, fault := range []string{"pause", "kill"} {
				switch fault {
				case "pause":
					if err := srv.Pause(); err != nil {
						t.Fatal(err)
					}
				case "kill":
					srv.Kill()
				}
				openBefore := openCircuit()
				resumed := 0
				for i := range 8 {
					start := time.Now()
					cs := mustDial(t, ts.addr, cfg)
					// Two store calls at most (get, put), each within
					// the 200ms budget; slack for a loaded machine, far
					// below the 10s socket timeouts.
					if took := time.Since(start); took > 2*time.Second {
						t.Errorf("%s: connection %d took %v", fault, i, took)
					}
					if cs.DidResume {
						resumed++
					}
				}
				if openCircuit() == openBefore {
					t.Errorf("%s: the circuit breaker never opened", fault)
				}
				switch fallback {
				case fallbackFull:
					if resumed > 1 {
						// The first connection may still hold a ticket
						// stored before the fault and fail to look it
						// up; none may resume.
						t.Errorf("%s: %d connections resumed without Redis", fault, resumed)
					}
				case fallbackStateless:
					if resumed < 6 {
						t.Errorf("%s: only %d of 8 connections resumed on stateless fallback tickets", fault, resumed)
					}
				}
				switch fault {
				case "pause":
					if err := srv.Resume(); err != nil {
						t.Fatal(err)
					}
				case "kill":
					if err := srv.Restart(); err != nil {
						t.Fatal(err)
					}
				}
				// Resumption through the store returns by itself.
				deadline := time.Now().Add(10 * time.Second)
				cache := newRecordingCache()
				rcfg := clientConfig(set, set.ClientA, cache)
				for {
					mustDial(t, ts.addr, rcfg)
					if tk := cache.ticket(t); tk[0] == storeTicketVersion && mustDial(t, ts.addr, rcfg).DidResume {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("after %s: resumption through Redis did not return", fault)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
}

func openCircuit() float64 {
	return testutil.ToFloat64(metrics.StoreOperations.WithLabelValues("put", "open_circuit")) +
		testutil.ToFloat64(metrics.StoreOperations.WithLabelValues("get", "open_circuit"))
}

// TestStoredSessionsFollowRing: the ring's invalidation and deny list
// apply to stored sessions as to stateless tickets, with no store call of
// their own (the stored blob is a ring-sealed ticket, and verify runs on
// every resumed handshake).
func TestStoredSessionsFollowRing(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	store := memoryStore(t, 100)
	r, doc := testRing(t)
	ts := newTestServer(t, set, tls.VersionTLS13, r, withStore(t, store, SessionStorePolicy{}))
	cfgA := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
	cfgB := clientConfig(set, set.ClientB, tls.NewLRUClientSessionCache(8))
	for _, cfg := range []*tls.Config{cfgA, cfgB} {
		mustDial(t, ts.addr, cfg)
	}

	// Deny A: its stored session must not let it back in.
	sum := sha256.Sum256(set.ClientA.Cert.Raw)
	d := doc.Clone()
	d.Denied = []keyring.DeniedCert{{SHA256: hex.EncodeToString(sum[:])}}
	nr, err := keyring.NewSnapshot(d, testSchedule())
	if err != nil {
		t.Fatal(err)
	}
	ts.rings.Store(nr)
	if cs, err := dial(t, ts.addr, cfgA); err == nil {
		t.Fatalf("denied client connected (resumed=%v)", cs.DidResume)
	}
	if !mustDial(t, ts.addr, cfgB).DidResume {
		t.Fatal("other client did not resume")
	}

	// Invalidate everything issued until now (the binding's clock).
	d = d.Clone()
	d.InvalidatedBefore = ts.binding.now().Add(time.Second)
	nr, err = keyring.NewSnapshot(d, testSchedule())
	if err != nil {
		t.Fatal(err)
	}
	ts.rings.Store(nr)
	before := rejections(rejectInvalidated)
	if mustDial(t, ts.addr, cfgB).DidResume {
		t.Fatal("session stored before the invalidation resumed")
	}
	if rejections(rejectInvalidated) == before {
		t.Error("the refusal was not counted as invalidated")
	}
}

// FuzzUnwrapStoredSession feeds arbitrary identities to UnwrapSession with
// a session store: it must never panic or fail the connection, and resume
// only the session the store holds under the handle we issued.
func FuzzUnwrapStoredSession(f *testing.F) {
	sched := testSchedule()
	doc, err := sched.Maintain(nil, t0, keyring.NewRandomKey)
	if err != nil {
		f.Fatal(err)
	}
	r, err := keyring.NewSnapshot(doc, sched)
	if err != nil {
		f.Fatal(err)
	}
	holder := new(keyring.Holder)
	holder.Store(r)
	opts, _ := SessionStorePolicy{Fallback: fallbackStateless}.withDefaults()
	pb := &policyBinding{ticketBinding: *testBinding(1, false), rings: holder, now: func() time.Time { return t0 }}
	pb.sessions = newSessions(memoryStore(f, 16), opts, 10*time.Minute, zap.NewNop())
	cs := tls.ConnectionState{ServerName: "a.example.com"}
	good, err := pb.wrapSession(cs, realSessionState(f))
	if err != nil || good[0] != storeTicketVersion {
		f.Fatalf("wrapSession = %x, %v", good, err)
	}
	f.Add(good, "a.example.com")
	f.Add(good[:20], "a.example.com")
	f.Add(append(append([]byte{}, good...), 0), "a.example.com")
	f.Add([]byte{storeTicketVersion}, "")
	f.Add([]byte{}, "")
	f.Add(placeholderNoRing, "x")
	f.Fuzz(func(t *testing.T, identity []byte, sni string) {
		got, err := pb.unwrapSession(identity, tls.ConnectionState{ServerName: sni})
		if err != nil {
			t.Fatalf("UnwrapSession returned an error (would end the connection): %v", err)
		}
		if got != nil && !bytes.Equal(identity, good) {
			t.Fatalf("forged identity %x resumed a session", identity)
		}
	})
}

// The admin operations also delete stored sessions: revoke by fingerprint
// removes that client's sessions, invalidate (now) removes them all.
func TestAdminOperationsCleanSessionStore(t *testing.T) {
	a := startTestApp(t, t.TempDir())
	store := memoryStore(t, 100)
	opts, err := SessionStorePolicy{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	a.sessions = newSessions(store, opts, a.sched.Lifetime, zap.NewNop())
	ctx := context.Background()
	leafA, leafB := [32]byte{1}, [32]byte{2}
	put := func(handle string, leaf [32]byte) {
		if err := store.Put(ctx, []byte(handle), []byte("sealed"), leaf, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	present := func(handle string) bool {
		_, err := store.Get(ctx, []byte(handle))
		return err == nil
	}
	if st, err := a.status(); err != nil || st.SessionStore == nil || st.SessionStore.Fallback != "full" || st.SessionStore.CircuitOpenUntil != nil {
		t.Fatalf("status with a healthy session store: %+v %v", st, err)
	}
	put("a1", leafA)
	put("a2", leafA)
	put("b1", leafB)

	if _, _, err := a.revoke(ctx, keyring.DeniedCert{SHA256: hex.EncodeToString(leafA[:])}); err != nil {
		t.Fatal(err)
	}
	if present("a1") || present("a2") || !present("b1") {
		t.Fatalf("after revoking A: a1=%v a2=%v b1=%v", present("a1"), present("a2"), present("b1"))
	}
	// Invalidating up to a past time leaves later sessions to the ring's
	// check; invalidating up to now deletes everything stored.
	if _, err := a.invalidate(ctx, a.sync.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if !present("b1") {
		t.Fatal("invalidate in the past deleted a newer session")
	}
	// (A second ahead, so that the clock's second cannot tick over between
	// this call and the check inside it.)
	if _, err := a.invalidate(ctx, a.sync.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if present("b1") {
		t.Fatal("invalidate now left a stored session")
	}
}

func TestSessionStoreStatusReportsOpenCircuit(t *testing.T) {
	opts, err := SessionStorePolicy{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	opts.Fallback = "stateless"
	s := newSessions(memoryStore(t, 10), opts, time.Minute, zap.NewNop())
	now := time.Now()
	for range s.breaker.threshold {
		s.breaker.failure(now, context.DeadlineExceeded)
	}
	st := s.status(now)
	if st.CircuitOpenUntil == nil || !st.CircuitOpenUntil.After(now) || st.ConsecutiveFailures != s.breaker.threshold || st.Fallback != "stateless" {
		t.Fatalf("open breaker reported as %+v", st)
	}
	s.breaker.success()
	if st := s.status(now); st.CircuitOpenUntil != nil || st.ConsecutiveFailures != 0 {
		t.Fatalf("closed breaker reported as %+v", st)
	}
}
