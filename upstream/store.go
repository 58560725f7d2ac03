package upstream

import (
	"crypto/tls"
	"hash/maphash"
	"sync"
	"time"
)

// sessionKey identifies one cached client session. identity is the digest
// of the transport's TLS client identity and trust settings (see
// identityDigest); server is the key crypto/tls asks for, which is the
// connection's effective ServerName (or the remote address when it has
// none). A session is only ever returned for the exact pair it was stored
// under, so it is never offered to another server name nor under another
// client certificate or trust configuration.
type sessionKey struct {
	identity string
	server   string
}

// sessionStore is a bounded LRU of TLS client sessions with per-lookup
// expiry. It is shared by every transport configured with the same capacity
// (see acquireStore), so sessions survive config reloads; the identity part
// of the key keeps transports with different TLS settings apart.
//
// The store is split into shards, each an LRU under its own mutex, chosen by
// a hash of the key. Critical sections are a map operation and a few pointer
// moves: no allocation (evicted entries are recycled), no I/O, no calls out.
type sessionStore struct {
	seed   maphash.Seed
	shards []storeShard
}

// Capacities from which the store is split into shards: below
// shardThreshold a single LRU keeps eviction exact; above it every shard
// holds at least shardThreshold/maxShards entries.
const (
	maxShards      = 16
	shardThreshold = 256
)

type storeShard struct {
	mu    sync.Mutex
	cap   int
	items map[sessionKey]*storeEntry
	// head is the sentinel of a circular doubly linked list, most recently
	// used first.
	head storeEntry
	_    [64]byte // keep neighbouring shards' mutexes off one cache line
}

type storeEntry struct {
	key    sessionKey
	cs     *tls.ClientSessionState // nil: no session, only the health state below
	stored int64                   // Unix nanoseconds when Put last stored cs

	// fullAt is when a full, fully verified handshake under key last
	// succeeded (Unix nanoseconds; 0: none seen). A session is offered
	// under full_handshake_every only while fullAt is recent enough.
	fullAt int64
	// failing is set by a failed handshake and cleared by a successful
	// one: a failure streak is reported once.
	failing bool

	prev, next *storeEntry
}

// newSessionStore returns a store that holds at most capacity sessions
// (capacity must be positive).
func newSessionStore(capacity int) *sessionStore {
	n := 1
	if capacity >= shardThreshold {
		n = maxShards
	}
	s := &sessionStore{seed: maphash.MakeSeed(), shards: make([]storeShard, n)}
	per, extra := capacity/n, capacity%n
	for i := range s.shards {
		sh := &s.shards[i]
		sh.cap = per
		if i < extra {
			sh.cap++
		}
		sh.items = make(map[sessionKey]*storeEntry)
		sh.head.next, sh.head.prev = &sh.head, &sh.head
	}
	return s
}

func (s *sessionStore) shard(k sessionKey) *storeShard {
	if len(s.shards) == 1 {
		return &s.shards[0]
	}
	return &s.shards[maphash.Comparable(s.seed, k)%uint64(len(s.shards))]
}

// lookup returns the session stored under k if it was stored no longer
// than maxAge before now (an older entry is removed), with an upper bound
// on the age of the last full handshake under k: when fullEvery is positive, a session is offered only if a full
// handshake under k succeeded at most fullEvery before now. Otherwise the
// session is dropped (the health state stays), so that this connection and
// every later one do a full handshake, with certificate verification, until
// one succeeds and markFull records it.
func (s *sessionStore) lookup(k sessionKey, maxAge, fullEvery time.Duration, now time.Time) (*tls.ClientSessionState, bool) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.items[k]
	if e == nil || e.cs == nil {
		return nil, false
	}
	ns := now.UnixNano()
	if ns-e.stored > int64(maxAge) {
		// Expired: never offer it, and free the slot.
		sh.remove(e)
		return nil, false
	}
	if fullEvery > 0 && ns-e.fullAt > int64(fullEvery) {
		// A full handshake is due: refuse the session. fullAt == 0
		// (no full handshake seen, e.g. the session predates the
		// option) is always due.
		e.cs = nil
		return nil, false
	}
	sh.moveToFront(e)
	return e.cs, true
}

// markFull records that a full handshake under k succeeded at now, and
// ends any failure streak; it reports whether one was ended.
func (s *sessionStore) markFull(k sessionKey, now time.Time) (recovered bool) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.entry(k)
	recovered, e.failing = e.failing, false
	e.fullAt = now.UnixNano()
	return recovered
}

// markFailed records a failed handshake under k, drops its session, and
// reports whether this failure starts a streak (the previous handshake
// under k did not fail).
func (s *sessionStore) markFailed(k sessionKey) (first bool) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.entry(k)
	first, e.failing = !e.failing, true
	e.cs = nil
	return first
}

// put stores cs under k, or removes k's session when cs is nil (crypto/tls
// does that for a session it found unusable). At capacity the least
// recently used entry of the shard is evicted. A new session ends a failure
// streak under k; put reports whether it ended one.
func (s *sessionStore) put(k sessionKey, cs *tls.ClientSessionState, now time.Time) (recovered bool) {
	sh := s.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.items[k]
	if cs == nil {
		switch {
		case e == nil:
		case e.fullAt != 0 || e.failing:
			e.cs = nil // keep the health state
		default:
			sh.remove(e)
		}
		return false
	}
	if e == nil {
		e = sh.entry(k)
	}
	// A new session means the handshake that made it succeeded.
	recovered = e.failing
	e.cs, e.stored, e.failing = cs, now.UnixNano(), false
	sh.moveToFront(e)
	return recovered
}

// entry returns the entry under k, creating an empty one (recycling the
// least recently used entry at capacity) when there is none. sh.mu is held.
func (sh *storeShard) entry(k sessionKey) *storeEntry {
	if e := sh.items[k]; e != nil {
		sh.moveToFront(e)
		return e
	}
	var e *storeEntry
	if len(sh.items) >= sh.cap {
		// Recycle the least recently used entry.
		e = sh.head.prev
		sh.remove(e)
	} else {
		e = new(storeEntry)
	}
	*e = storeEntry{key: k}
	sh.items[k] = e
	sh.pushFront(e)
	return e
}

// Destruct implements caddy.Destructor: the last transport using the store
// is gone, drop every session.
func (s *sessionStore) Destruct() error {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		clear(sh.items)
		sh.head.next, sh.head.prev = &sh.head, &sh.head
		sh.mu.Unlock()
	}
	return nil
}

func (sh *storeShard) pushFront(e *storeEntry) {
	e.prev = &sh.head
	e.next = sh.head.next
	e.next.prev = e
	sh.head.next = e
}

func (sh *storeShard) unlink(e *storeEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (sh *storeShard) moveToFront(e *storeEntry) {
	if sh.head.next == e {
		return
	}
	sh.unlink(e)
	sh.pushFront(e)
}

func (sh *storeShard) remove(e *storeEntry) {
	sh.unlink(e)
	delete(sh.items, e.key)
	e.cs = nil
}
