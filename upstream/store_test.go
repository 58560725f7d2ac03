package upstream

import (
	"crypto/tls"
	"fmt"
	"sync"
	"testing"
	"time"
)

// session returns a distinct opaque session; the store never looks inside.
func session() *tls.ClientSessionState { return new(tls.ClientSessionState) }

func key(server string) sessionKey { return sessionKey{identity: "id", server: server} }

func TestStoreLRUEviction(t *testing.T) {
	s := newSessionStore(3)
	now := time.Now()
	a, b, c, d := session(), session(), session(), session()
	s.put(key("a"), a, now)
	s.put(key("b"), b, now)
	s.put(key("c"), c, now)
	// Touch a: b is now the least recently used.
	if got, ok := s.get(key("a"), time.Hour, now); !ok || got != a {
		t.Fatalf("get a = %p, %v; want %p", got, ok, a)
	}
	s.put(key("d"), d, now)
	if _, ok := s.get(key("b"), time.Hour, now); ok {
		t.Error("b should have been evicted as least recently used")
	}
	for k, want := range map[string]*tls.ClientSessionState{"a": a, "c": c, "d": d} {
		if got, ok := s.get(key(k), time.Hour, now); !ok || got != want {
			t.Errorf("get %s = %p, %v; want %p", k, got, ok, want)
		}
	}
	if n := s.len(); n != 3 {
		t.Errorf("len = %d, want 3", n)
	}
}

func TestStoreReplaceAndDelete(t *testing.T) {
	s := newSessionStore(2)
	now := time.Now()
	first, second := session(), session()
	s.put(key("x"), first, now)
	s.put(key("x"), second, now)
	if got, _ := s.get(key("x"), time.Hour, now); got != second {
		t.Fatal("put did not replace the session")
	}
	if n := s.len(); n != 1 {
		t.Fatalf("len = %d after replacing, want 1", n)
	}
	// crypto/tls deletes with a nil session.
	s.put(key("x"), nil, now)
	if _, ok := s.get(key("x"), time.Hour, now); ok {
		t.Fatal("nil put did not delete")
	}
	s.put(key("missing"), nil, now) // deleting an absent key is harmless
	if n := s.len(); n != 0 {
		t.Fatalf("len = %d, want 0", n)
	}
}

func TestStoreExpiry(t *testing.T) {
	s := newSessionStore(4)
	t0 := time.Unix(1_700_000_000, 0)
	cs := session()
	s.put(key("x"), cs, t0)
	tests := []struct {
		at     time.Duration
		maxAge time.Duration
		want   bool
	}{
		{0, time.Minute, true},
		{time.Minute, time.Minute, true},                  // exactly at the limit
		{30 * time.Second, 10 * time.Second, false},       // a shorter lifetime sees it expired...
		{time.Minute + time.Nanosecond, time.Hour, false}, // ...and expiry removed it for everyone
	}
	for i, tc := range tests {
		if _, ok := s.get(key("x"), tc.maxAge, t0.Add(tc.at)); ok != tc.want {
			t.Errorf("case %d: get at +%s with max age %s = %v, want %v", i, tc.at, tc.maxAge, ok, tc.want)
		}
	}
	if n := s.len(); n != 0 {
		t.Errorf("expired entry still held: len = %d", n)
	}
	// A fresh put restarts the clock.
	s.put(key("x"), cs, t0.Add(time.Hour))
	if _, ok := s.get(key("x"), time.Minute, t0.Add(time.Hour+30*time.Second)); !ok {
		t.Error("re-stored session not found")
	}
}

func TestStoreKeysAreExact(t *testing.T) {
	s := newSessionStore(8)
	now := time.Now()
	cs := session()
	s.put(sessionKey{identity: "A", server: "api.internal"}, cs, now)
	for _, k := range []sessionKey{
		{identity: "B", server: "api.internal"},
		{identity: "A", server: "api.internal."},
		{identity: "A", server: "API.internal"},
		{identity: "A", server: "other.internal"},
		{identity: "", server: "api.internal"},
		{identity: "Aapi.internal", server: ""},
	} {
		if _, ok := s.get(k, time.Hour, now); ok {
			t.Errorf("session offered under %+v", k)
		}
	}
	if got, ok := s.get(sessionKey{identity: "A", server: "api.internal"}, time.Hour, now); !ok || got != cs {
		t.Error("session not found under its own key")
	}
}

func TestStoreCapacityIsExact(t *testing.T) {
	for _, capacity := range []int{1, 2, 255, 256, 257, 1000, 1024, 4099} {
		s := newSessionStore(capacity)
		if got := s.capacity(); got != capacity {
			t.Errorf("capacity(%d) = %d", capacity, got)
		}
		now := time.Now()
		for i := 0; i < 3*capacity+10; i++ {
			s.put(key(fmt.Sprintf("host-%d", i)), session(), now)
		}
		if n := s.len(); n > capacity {
			t.Errorf("capacity %d: holds %d entries", capacity, n)
		}
		if capacity < shardThreshold {
			// Single shard: exact LRU, full after overfilling.
			if n := s.len(); n != capacity {
				t.Errorf("capacity %d: holds %d entries, want %d", capacity, n, capacity)
			}
			// The most recent capacity keys survive.
			last := 3*capacity + 9
			if _, ok := s.get(key(fmt.Sprintf("host-%d", last)), time.Hour, now); !ok {
				t.Errorf("capacity %d: newest entry missing", capacity)
			}
		}
	}
}

func TestStoreDestruct(t *testing.T) {
	s := newSessionStore(300) // sharded
	now := time.Now()
	for i := 0; i < 100; i++ {
		s.put(key(fmt.Sprint(i)), session(), now)
	}
	if err := s.Destruct(); err != nil {
		t.Fatal(err)
	}
	if n := s.len(); n != 0 {
		t.Fatalf("len after Destruct = %d", n)
	}
	s.put(key("again"), session(), now)
	if _, ok := s.get(key("again"), time.Hour, now); !ok {
		t.Fatal("store unusable after Destruct")
	}
}

// TestStoreConcurrent exercises every operation from many goroutines; run
// with -race it checks the locking.
func TestStoreConcurrent(t *testing.T) {
	for _, capacity := range []int{16, 512} {
		s := newSessionStore(capacity)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for i := 0; i < 2000; i++ {
					k := key(fmt.Sprintf("h%d", (i*7+g)%64))
					now := time.Now()
					switch i % 4 {
					case 0, 1:
						s.put(k, session(), now)
					case 2:
						s.get(k, time.Minute, now)
					case 3:
						s.put(k, nil, now)
					}
				}
			}(g)
		}
		wg.Wait()
		if n := s.len(); n > capacity {
			t.Errorf("capacity %d exceeded: %d", capacity, n)
		}
	}
}

func TestSharedStorePool(t *testing.T) {
	const capacity = 7
	a, err := acquireStore(capacity)
	if err != nil {
		t.Fatal(err)
	}
	b, err := acquireStore(capacity)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("transports with the same capacity must share one store")
	}
	other, err := acquireStore(capacity + 1)
	if err != nil {
		t.Fatal(err)
	}
	if other == a {
		t.Fatal("different capacities must not share a store")
	}
	now := time.Now()
	a.put(key("x"), session(), now)
	// Releasing one user keeps the sessions (a config reload).
	if err := releaseStore(storeKey(capacity)); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.get(key("x"), time.Hour, now); !ok {
		t.Fatal("sessions lost while the store is still referenced")
	}
	if err := releaseStore(storeKey(capacity)); err != nil {
		t.Fatal(err)
	}
	if n := a.len(); n != 0 {
		t.Fatalf("last release should destruct the store, len = %d", n)
	}
	if err := releaseStore(storeKey(capacity + 1)); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkStoreGetHit(b *testing.B) {
	s := newSessionStore(defaultSessionCacheSize)
	c := &sessionCache{store: s, identity: "0123456789abcdef0123456789abcdef", lifetime: time.Hour, now: time.Now}
	c.Put("backend.internal", session())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, ok := c.Get("backend.internal"); !ok {
				b.Fatal("miss")
			}
		}
	})
}

// get returns the session stored under k if it was stored no longer than
// maxAge before now. An older entry is removed.
func (s *sessionStore) get(k sessionKey, maxAge time.Duration, now time.Time) (*tls.ClientSessionState, bool) {
	return s.lookup(k, maxAge, 0, now)
}

// len returns the number of entries held (expired ones, and ones holding
// only health state, included until a lookup or eviction removes them).
func (s *sessionStore) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.items)
		sh.mu.Unlock()
	}
	return n
}

// capacity returns the most entries the store holds.
func (s *sessionStore) capacity() int {
	n := 0
	for i := range s.shards {
		n += s.shards[i].cap
	}
	return n
}
