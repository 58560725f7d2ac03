package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

// DefaultRedisLocalCacheEntries bounds the in-process cache in front of
// Redis by default.
const DefaultRedisLocalCacheEntries = 10_000

// cachedStore is the Redis store behind a bounded in-process cache: a
// resumed handshake whose session this node stored or already read costs
// no round trip. Every node announces deletions (taken sessions, a client
// certificate's sessions, everything) on a pub/sub channel, and every node
// drops what it caches on hearing them. Messages missed while a node was
// cut off from Redis cannot be replayed, so a node empties its cache
// whenever its subscription is (re)established and whenever a Redis call
// fails: a cached session is only trusted while this node hears Redis.
//
// 0-RTT claims and single-use takes always go to Redis: they must be
// atomic across the fleet.
//
// Invalidation messages: "d:<handle hex>" (one session), "l:<leaf hex>" (a
// client certificate's sessions), "*" (everything).
type cachedStore struct {
	backend   *redisBackend
	mem       *MemoryStore
	channel   string
	pubsub    *redis.PubSub
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

func newCachedStore(backend *redisBackend, channel string, entries int) *cachedStore {
	c := &cachedStore{
		backend: backend,
		mem:     newMemoryStoreFor(entries, metrics.CacheRedisLocal),
		channel: channel,
		done:    make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.pubsub = backend.client.Subscribe(ctx, channel)
	ch := c.pubsub.ChannelWithSubscriptions()
	go c.listen(ctx, ch)
	return c
}

func (c *cachedStore) listen(ctx context.Context, ch <-chan any) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Subscription:
				// (Re)subscribed: whatever was announced meanwhile is
				// lost, so start from nothing.
				_ = c.mem.InvalidateAll(ctx)
			case *redis.Message:
				c.apply(ctx, m.Payload)
			}
		}
	}
}

func (c *cachedStore) apply(ctx context.Context, msg string) {
	switch {
	case msg == "*":
		_ = c.mem.InvalidateAll(ctx)
	case strings.HasPrefix(msg, "d:"):
		if h, err := hex.DecodeString(msg[2:]); err == nil {
			c.mem.remove(h)
		}
	case strings.HasPrefix(msg, "l:"):
		// Sessions cached from a read carry no fingerprint, so a
		// revocation (rare) empties the whole cache.
		_ = c.mem.InvalidateAll(ctx)
	}
}

// announce tells every node (this one included) to drop msg's sessions.
func (c *cachedStore) announce(ctx context.Context, msg string) error {
	return c.backend.announce(ctx, c.channel, msg)
}

// failed empties the cache after a Redis call failed (see cachedStore).
func (c *cachedStore) failed(err error) {
	if err != nil && !errors.Is(err, ErrMiss) {
		_ = c.mem.InvalidateAll(context.Background())
	}
}

// Put stores a session in Redis and, once Redis has it, in the cache.
func (c *cachedStore) Put(ctx context.Context, handle, sealed []byte, leaf [32]byte, ttl time.Duration) error {
	err := c.backend.Put(ctx, handle, sealed, leaf, ttl)
	if err != nil {
		c.failed(err)
	} else {
		_ = c.mem.Put(ctx, handle, sealed, leaf, ttl)
	}
	return err
}

// Get returns a stored session or ErrMiss, from the cache when it holds
// it; a session read from Redis is cached for what is left of its life.
func (c *cachedStore) Get(ctx context.Context, handle []byte) ([]byte, error) {
	if b, err := c.mem.Get(ctx, handle); err == nil {
		return b, nil
	}
	b, ttl, err := c.backend.getWithTTL(ctx, handle)
	if errors.Is(err, ErrMiss) {
		return nil, err
	}
	if err != nil {
		c.failed(err)
		return nil, err
	}
	if ttl > 0 {
		// Unindexed: a revocation by fingerprint is announced, and
		// RevokeLeaf on this node also flushes (see RevokeLeaf).
		_ = c.mem.Put(ctx, handle, b, [32]byte{}, ttl)
	}
	return b, nil
}

// Take returns a stored session and deletes it, or ErrMiss. It always asks
// Redis, and tells the other nodes' caches in the same round trip.
func (c *cachedStore) Take(ctx context.Context, handle []byte) ([]byte, error) {
	c.mem.remove(handle)
	b, err := c.backend.takeAnnouncing(ctx, handle, c.channel, "d:"+hex.EncodeToString(handle))
	c.failed(err)
	return b, err
}

// RevokeLeaf deletes every session of a client certificate in Redis, and
// empties every node's cache.
func (c *cachedStore) RevokeLeaf(ctx context.Context, leaf [32]byte) (int, error) {
	if leaf == ([32]byte{}) {
		return 0, nil
	}
	n, err := c.backend.RevokeLeaf(ctx, leaf)
	if err != nil {
		return 0, err
	}
	_ = c.mem.InvalidateAll(ctx)
	if err := c.announce(ctx, "l:"+hex.EncodeToString(leaf[:])); err != nil {
		return n, err
	}
	return n, nil
}

// InvalidateAll deletes every session in Redis and in every node's cache.
func (c *cachedStore) InvalidateAll(ctx context.Context) error {
	err := c.backend.InvalidateAll(ctx)
	_ = c.mem.InvalidateAll(ctx)
	if err == nil {
		err = c.announce(ctx, "*")
	}
	return err
}

// ClaimEarlyData always asks Redis: see redisBackend.ClaimEarlyData.
func (c *cachedStore) ClaimEarlyData(ctx context.Context, handle []byte) (bool, error) {
	return c.backend.ClaimEarlyData(ctx, handle)
}

// Close stops the subscription, drops the cache and closes the backend.
func (c *cachedStore) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		_ = c.pubsub.Close()
		<-c.done
		_ = c.mem.Close()
	})
	return c.backend.Close()
}

var _ SessionStore = (*cachedStore)(nil)
