package storage

import (
	"context"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// cacheCounts reads a cache's entries gauge and eviction counters.
type cacheCounts struct{ entries, capacity, expired, flush float64 }

func readCache(store string) cacheCounts {
	return cacheCounts{
		entries:  testutil.ToFloat64(metrics.StoreCacheEntries.WithLabelValues(store)),
		capacity: testutil.ToFloat64(metrics.StoreCacheEvictions.WithLabelValues(store, metrics.EvictCapacity)),
		expired:  testutil.ToFloat64(metrics.StoreCacheEvictions.WithLabelValues(store, metrics.EvictExpired)),
		flush:    testutil.ToFloat64(metrics.StoreCacheEvictions.WithLabelValues(store, metrics.EvictFlush)),
	}
}

func (c cacheCounts) minus(o cacheCounts) cacheCounts {
	return cacheCounts{c.entries - o.entries, c.capacity - o.capacity, c.expired - o.expired, c.flush - o.flush}
}

func TestMemoryStoreCacheMetrics(t *testing.T) {
	ctx := context.Background()
	base := readCache(metrics.CacheMemory)
	s := newMemoryStore(2)
	clock := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return clock }
	step := func(what string, want cacheCounts) {
		t.Helper()
		if got := readCache(metrics.CacheMemory).minus(base); got != want {
			t.Fatalf("after %s: %+v, want %+v", what, got, want)
		}
	}

	h1, h2, h3 := newHandle(t), newHandle(t), newHandle(t)
	for _, h := range [][]byte{h1, h2} {
		if err := s.Put(ctx, h, []byte("x"), [32]byte{1}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	step("two puts", cacheCounts{entries: 2})
	// Replacing a session is not an eviction.
	if err := s.Put(ctx, h2, []byte("y"), [32]byte{1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	step("replace", cacheCounts{entries: 2})
	if err := s.Put(ctx, h3, []byte("x"), [32]byte{}, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	step("put beyond max_entries", cacheCounts{entries: 2, capacity: 1})
	// Deletes, takes and revocations are not evictions.
	if _, err := s.Take(ctx, h2); err != nil {
		t.Fatal(err)
	}
	step("take", cacheCounts{entries: 1, capacity: 1})
	clock = clock.Add(3 * time.Minute)
	if _, err := s.Get(ctx, h3); err != ErrMiss {
		t.Fatalf("Get after expiry: %v", err)
	}
	step("expiry", cacheCounts{entries: 0, capacity: 1, expired: 1})
	for _, h := range [][]byte{h1, h2} {
		if err := s.Put(ctx, h, []byte("x"), [32]byte{2}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.RevokeLeaf(ctx, [32]byte{2}); err != nil || n != 2 {
		t.Fatalf("RevokeLeaf = %d, %v", n, err)
	}
	step("revoke", cacheCounts{entries: 0, capacity: 1, expired: 1})
	for _, h := range [][]byte{h1, h2} {
		if err := s.Put(ctx, h, []byte("x"), [32]byte{}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.InvalidateAll(ctx); err != nil {
		t.Fatal(err)
	}
	step("invalidate", cacheCounts{entries: 0, capacity: 1, expired: 1, flush: 2})
	// Closing (Caddy unloading the config) takes the store's sessions out
	// of the gauge without calling them evictions.
	if err := s.Put(ctx, h1, []byte("x"), [32]byte{}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Cleanup(); err != nil {
		t.Fatal(err)
	}
	step("cleanup", cacheCounts{entries: 0, capacity: 1, expired: 1, flush: 2})

	// A cache update allocates nothing beyond the store's own entry.
	s2 := newMemoryStore(1)
	h := newHandle(t)
	if allocs := testing.AllocsPerRun(200, func() { _, _ = s2.Get(ctx, h) }); allocs != 0 {
		t.Errorf("Get miss allocates %v times", allocs)
	}
}

// The Redis store's in-process cache reports under store="redis_local":
// a Redis failure flushes it, Close takes it out of the gauge.
func TestRedisLocalCacheMetrics(t *testing.T) {
	srv := testredis.Must(t)
	ctx := ctxT(t)
	s := newRedisStore(t, srv, func(s *RedisStore) { s.LocalCacheEntries = 1 })
	waitSynced(t, s)
	// After the first subscription (which flushes the empty cache).
	base := readCache(metrics.CacheRedisLocal)
	h1, h2 := newHandle(t), newHandle(t)
	for _, h := range [][]byte{h1, h2} {
		if err := s.Put(ctx, h, []byte("x"), [32]byte{}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got := readCache(metrics.CacheRedisLocal).minus(base); got != (cacheCounts{entries: 1, capacity: 1}) {
		t.Fatalf("after two puts into a one-entry cache: %+v", got)
	}
	srv.Kill()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := s.Put(short, newHandle(t), []byte("x"), [32]byte{}, time.Minute); err == nil {
		t.Fatal("Put with Redis down succeeded")
	}
	if got := readCache(metrics.CacheRedisLocal).minus(base); got.entries != 0 || got.flush != 1 {
		t.Fatalf("after a Redis failure: %+v, want the one entry flushed", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := readCache(metrics.CacheRedisLocal).minus(base); got.entries != 0 {
		t.Fatalf("after Close: %+v", got)
	}
}

// Caddy cleans up a module whose Provision or Validate failed.
func TestMemoryStoreCleanupUnprovisioned(t *testing.T) {
	if err := new(MemoryStore).Cleanup(); err != nil {
		t.Fatal(err)
	}
	s := &MemoryStore{MaxEntries: -1}
	err := s.Provision(caddy.Context{})
	if err == nil {
		err = s.Validate()
	}
	if err == nil {
		t.Fatal("max_entries -1 accepted")
	}
	if err := s.Cleanup(); err != nil {
		t.Fatal(err)
	}
}
