package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

// newMemoryStore returns a provisioned memory store holding at most
// maxEntries sessions.
func newMemoryStore(maxEntries int) *MemoryStore {
	return newMemoryStoreFor(maxEntries, metrics.CacheMemory)
}

// provisionRedisStore provisions and validates s as Caddy would (and
// cleans it up if either fails), logging to Caddy's default logger unless
// s has one (without a config, the context would give a development
// logger).
func provisionRedisStore(s *RedisStore) (*RedisStore, error) {
	if s.logger == nil {
		s.logger = caddy.Log().Named("tls_resume.session_stores.redis")
	}
	err := s.Provision(caddy.Context{})
	if err == nil {
		err = s.Validate()
	}
	if err != nil {
		_ = s.Cleanup()
		return nil, err
	}
	return s, nil
}

// waitSynced waits until the local cache's subscription of s is
// established: until then, the flush that comes with it may empty the
// cache at any moment. It announces the deletion of a probe session it
// caches: the probe is gone once the listener has handled the
// subscription (which Redis confirms before delivering any message) or
// the announcement.
func waitSynced(t testing.TB, s *RedisStore) {
	t.Helper()
	c := s.store.(*cachedStore)
	ctx := context.Background()
	probe := []byte("waitSynced probe")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.mem.Put(ctx, probe, nil, [32]byte{}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := c.announce(ctx, "d:"+hex.EncodeToString(probe)); err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		for range 25 {
			if _, err := c.mem.Get(ctx, probe); errors.Is(err, ErrMiss) {
				return
			}
			time.Sleep(4 * time.Millisecond)
		}
	}
	t.Fatal("cache subscription not established")
}
