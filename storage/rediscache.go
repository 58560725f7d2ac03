package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

// DefaultRedisLocalCacheEntries bounds the in-process cache in front of
// Redis by default.
const DefaultRedisLocalCacheEntries = 10_000

// localCache is the bounded in-process cache in front of Redis: a resumed
// handshake whose session this node stored or already read costs no round
// trip. Every node announces deletions (single sessions, a client
// certificate's sessions, everything) on a pub/sub channel, and every node
// drops what it caches on hearing them. Messages missed while a node was
// cut off from Redis cannot be replayed, so a node empties its cache
// whenever its subscription is (re)established and whenever a Redis call
// fails: a cached session is only trusted while this node hears Redis.
//
// 0-RTT claims and single-use takes always go to Redis: they must be
// atomic across the fleet.
type localCache struct {
	mem       *MemoryStore
	client    redis.UniversalClient
	channel   string
	pubsub    *redis.PubSub
	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// Invalidation messages: "d:<handle hex>" (one session), "l:<leaf hex>" (a
// client certificate's sessions), "*" (everything).
func newLocalCache(client redis.UniversalClient, channel string, entries int) *localCache {
	c := &localCache{
		mem:     newMemoryStoreFor(entries, metrics.CacheRedisLocal),
		client:  client,
		channel: channel,
		done:    make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.pubsub = client.Subscribe(ctx, channel)
	ch := c.pubsub.ChannelWithSubscriptions()
	go c.listen(ctx, ch)
	return c
}

func (c *localCache) listen(ctx context.Context, ch <-chan any) {
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

func (c *localCache) apply(ctx context.Context, msg string) {
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
func (c *localCache) announce(ctx context.Context, msg string) error {
	return c.client.Publish(ctx, c.channel, msg).Err()
}

// failed empties the cache after a Redis call failed (see localCache).
func (c *localCache) failed(err error) {
	if err != nil && !errors.Is(err, ErrMiss) {
		_ = c.mem.InvalidateAll(context.Background())
	}
}

func (c *localCache) close() {
	c.closeOnce.Do(func() {
		c.cancel()
		_ = c.pubsub.Close()
		<-c.done
		_ = c.mem.Close()
	})
}
