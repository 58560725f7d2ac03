package tlsresume

import (
	"sync"
	"time"
)

// Go's TLS callbacks carry no connection handle. What several callbacks of
// one handshake do share is a few allocations Go makes once per handshake
// and keeps on the connection while it lives: the SNI string parsed from
// the ClientHello (ClientHelloInfo.ServerName and ConnectionState.ServerName
// of every later callback), and on a resumed connection the peer
// certificate slice ParseSessionState allocated. The address of such an
// allocation identifies the handshake: no other live connection can share
// it. A connTable maps that address to what an early callback leaves for a
// later one. An entry whose handshake is abandoned stays until it expires,
// and an address reused once its connection is gone is simply overwritten.
type connTable[V any] struct {
	// ttl is how long an entry lives; zero means defaultConnTTL.
	ttl    time.Duration
	shards [connTableShards]connTableShard[V]
}

// defaultConnTTL covers a handshake from its first callback to its last,
// over a slow network: the server waits a round trip for the client's
// Finished (and certificate) flight.
const defaultConnTTL = 30 * time.Second

func (t *connTable[V]) life() int64 {
	if t.ttl == 0 {
		return int64(defaultConnTTL)
	}
	return int64(t.ttl)
}

const (
	connTableShards   = 16
	connTableShardCap = 4096 // 65,536 handshakes in flight
)

type connTableShard[V any] struct {
	mu        sync.Mutex
	m         map[uintptr]connEntry[V]
	nextSweep int64
}

type connEntry[V any] struct {
	v  V
	at int64 // Unix nanoseconds of the put
}

func (t *connTable[V]) shard(key uintptr) *connTableShard[V] {
	// The allocations keyed on are at least 8-byte aligned.
	return &t.shards[(key>>3)%connTableShards]
}

// lockFor locks and returns key's shard, sweeping expired entries at most
// once per half TTL (so a flood cannot make every call walk a full shard).
func (t *connTable[V]) lockFor(key uintptr, n int64) *connTableShard[V] {
	sh := t.shard(key)
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[uintptr]connEntry[V])
	}
	if n >= sh.nextSweep {
		for k, e := range sh.m {
			if n-e.at >= t.life() {
				delete(sh.m, k)
			}
		}
		sh.nextSweep = n + t.life()/2
	}
	return sh
}

// put records v for key, replacing what was there unless keep says the
// existing entry (of the given age) stays. A full shard (a flood of
// handshakes that never finish) drops the record.
func (t *connTable[V]) put(key uintptr, v V, now time.Time, keep func(old V, age time.Duration) bool) {
	if key == 0 {
		return
	}
	n := now.UnixNano()
	sh := t.lockFor(key, n)
	defer sh.mu.Unlock()
	old, ok := sh.m[key]
	if ok && n-old.at < t.life() && keep != nil && keep(old.v, time.Duration(n-old.at)) {
		return
	}
	if !ok && len(sh.m) >= connTableShardCap {
		return
	}
	sh.m[key] = connEntry[V]{v: v, at: n}
}

// update changes the live entry for key in place; it reports whether there
// was one.
func (t *connTable[V]) update(key uintptr, now time.Time, fn func(*V)) bool {
	if key == 0 {
		return false
	}
	n := now.UnixNano()
	sh := t.lockFor(key, n)
	defer sh.mu.Unlock()
	e, ok := sh.m[key]
	if !ok || n-e.at >= t.life() {
		return false
	}
	fn(&e.v)
	sh.m[key] = e
	return true
}

// take returns and forgets the live entry for key.
func (t *connTable[V]) take(key uintptr, now time.Time) (V, bool) {
	var zero V
	if key == 0 {
		return zero, false
	}
	n := now.UnixNano()
	sh := t.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[key]
	if ok {
		delete(sh.m, key)
	}
	sh.mu.Unlock()
	if !ok || n-e.at >= t.life() {
		return zero, false
	}
	return e.v, true
}
