package storage

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisBackend is the session store in Redis, without a local cache:
// every call is a round trip. The redis module uses it directly with
// no_local_cache, and behind a cachedStore otherwise.
type redisBackend struct {
	client redis.UniversalClient
	prefix string
}

func (s *redisBackend) sessionKey(handle []byte) string {
	return s.prefix + "s:{" + hex.EncodeToString(handle) + "}"
}

func (s *redisBackend) claimKey(handle []byte) string {
	return s.prefix + "e:{" + hex.EncodeToString(handle) + "}"
}

func (s *redisBackend) leafKey(leaf [32]byte) string {
	return s.prefix + "l:" + hex.EncodeToString(leaf[:])
}

// Put stores a session and indexes it under its client certificate. The
// commands are pipelined, not transactional (in a Cluster the keys live in
// different slots): an index entry whose session is gone is harmless.
func (s *redisBackend) Put(ctx context.Context, handle, sealed []byte, leaf [32]byte, ttl time.Duration) error {
	pipe := s.client.Pipeline()
	pipe.Set(ctx, s.sessionKey(handle), sealed, ttl)
	if leaf != ([32]byte{}) {
		lk := s.leafKey(leaf)
		pipe.SAdd(ctx, lk, hex.EncodeToString(handle))
		// Every session has the same lifetime, so the newest one's TTL
		// is the set's.
		pipe.PExpire(ctx, lk, ttl)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// Get returns a stored session or ErrMiss.
func (s *redisBackend) Get(ctx context.Context, handle []byte) ([]byte, error) {
	b, err := s.client.Get(ctx, s.sessionKey(handle)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	return b, err
}

// getWithTTL is Get that also returns how long the session has left (0
// when Redis does not say), in the same round trip.
func (s *redisBackend) getWithTTL(ctx context.Context, handle []byte) ([]byte, time.Duration, error) {
	pipe := s.client.Pipeline()
	get := pipe.Get(ctx, s.sessionKey(handle))
	ttl := pipe.PTTL(ctx, s.sessionKey(handle))
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		return nil, 0, ErrMiss
	}
	if err != nil {
		return nil, 0, err
	}
	b, _ := get.Bytes()
	return b, max(ttl.Val(), 0), nil
}

// Take returns a stored session and deletes it (GETDEL), or ErrMiss. A
// session is taken once across every node sharing this Redis.
func (s *redisBackend) Take(ctx context.Context, handle []byte) ([]byte, error) {
	b, err := s.client.GetDel(ctx, s.sessionKey(handle)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	return b, err
}

// takeAnnouncing is Take that also publishes msg on channel, in the same
// round trip.
func (s *redisBackend) takeAnnouncing(ctx context.Context, handle []byte, channel, msg string) ([]byte, error) {
	pipe := s.client.Pipeline()
	get := pipe.GetDel(ctx, s.sessionKey(handle))
	pipe.Publish(ctx, channel, msg)
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, err
	}
	return get.Bytes()
}

// announce publishes msg on channel.
func (s *redisBackend) announce(ctx context.Context, channel, msg string) error {
	return s.client.Publish(ctx, channel, msg).Err()
}

// RevokeLeaf deletes every session indexed under a client certificate.
func (s *redisBackend) RevokeLeaf(ctx context.Context, leaf [32]byte) (int, error) {
	if leaf == ([32]byte{}) {
		return 0, nil
	}
	lk := s.leafKey(leaf)
	members, err := s.client.SMembers(ctx, lk).Result()
	if err != nil {
		return 0, err
	}
	pipe := s.client.Pipeline()
	dels := make([]*redis.IntCmd, 0, len(members))
	for _, m := range members {
		h, err := hex.DecodeString(m)
		if err != nil {
			continue // not written by us
		}
		dels = append(dels, pipe.Del(ctx, s.sessionKey(h), s.claimKey(h)))
	}
	pipe.Del(ctx, lk)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range dels {
		if d.Val() > 0 {
			n++
		}
	}
	return n, nil
}

// InvalidateAll deletes every key under the prefix, on every master of a
// Cluster.
func (s *redisBackend) InvalidateAll(ctx context.Context) error {
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return s.deletePrefix(ctx, c)
		})
	}
	return s.deletePrefix(ctx, s.client)
}

func (s *redisBackend) deletePrefix(ctx context.Context, c redis.Cmdable) error {
	iter := c.Scan(ctx, 0, s.prefix+"*", 1000).Iterator()
	batch := make([]string, 0, 256)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		// One key per UNLINK: keys of one batch may hash to different
		// slots.
		pipe := c.Pipeline()
		for _, k := range batch {
			pipe.Unlink(ctx, k)
		}
		_, err := pipe.Exec(ctx)
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	return flush()
}

// claimScript sets the 0-RTT claim of a live session, expiring with it:
// 1 = first claim, 0 = already claimed, -1 = no such session.
var claimScript = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then return -1 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ttl) then return 1 end
return 0
`)

// ClaimEarlyData reports whether this is the first 0-RTT use of a session
// across every node sharing this Redis.
func (s *redisBackend) ClaimEarlyData(ctx context.Context, handle []byte) (bool, error) {
	n, err := claimScript.Run(ctx, s.client, []string{s.sessionKey(handle), s.claimKey(handle)}).Int()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// Close closes the client's connections; closing twice is not an error.
func (s *redisBackend) Close() error {
	if err := s.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return err
	}
	return nil
}

var _ SessionStore = (*redisBackend)(nil)
