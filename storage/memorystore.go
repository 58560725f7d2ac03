package storage

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlsresume/caddy-tlsresume/internal/caddyfilex"
	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

func init() {
	caddy.RegisterModule(MemoryStore{})
}

// defaultMemoryMaxEntries bounds the memory session store by default.
const defaultMemoryMaxEntries = 100_000

// MemoryStore is a session store in this node's memory: a bounded LRU of
// sealed sessions with per-entry expiry. Sessions do not survive a restart
// and are not shared with other nodes; use the redis store for a fleet.
type MemoryStore struct {
	// The most sessions held; the least recently used is dropped beyond
	// it. Default: 100000.
	MaxEntries int `json:"max_entries,omitempty"`

	*memCore
}

// memCore is the store's state, behind a pointer so that the module value
// can be copied (Caddy registers it by value).
//
// Hand-written rather than golang-lru/v2's expirable.LRU, which has one TTL
// per cache (the Redis local cache needs each entry's remaining TTL), a
// clock of its own (time.Now), an expiry goroutine per cache that never
// stops (one more per config reload), and one eviction callback for
// capacity, expiry, Remove and Purge alike (the metrics count capacity,
// expiry and flush apart, and takes and revocations not at all); Take and
// the early-data claim would need a second lock around it.
type memCore struct {
	mu     sync.Mutex
	lru    *list.List // of *memEntry, most recently used first
	byKey  map[string]*list.Element
	byLeaf map[[32]byte]map[string]struct{}
	now    func() time.Time
	gauges cacheMetrics
}

// cacheMetrics are a cache's series, resolved once: updating them is an
// atomic add, with no allocation and no lock of their own.
type cacheMetrics struct {
	entries                    prometheus.Gauge
	capacity, expired, flushed prometheus.Counter
}

func newCacheMetrics(store string) cacheMetrics {
	return cacheMetrics{
		entries:  metrics.StoreCacheEntries.WithLabelValues(store),
		capacity: metrics.StoreCacheEvictions.WithLabelValues(store, metrics.EvictCapacity),
		expired:  metrics.StoreCacheEvictions.WithLabelValues(store, metrics.EvictExpired),
		flushed:  metrics.StoreCacheEvictions.WithLabelValues(store, metrics.EvictFlush),
	}
}

type memEntry struct {
	key     string
	sealed  []byte
	leaf    [32]byte
	expires time.Time
	claimed bool
}

// CaddyModule returns the Caddy module information.
func (MemoryStore) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls_resume.session_stores.memory",
		New: func() caddy.Module { return new(MemoryStore) },
	}
}

// newMemoryStoreFor returns a provisioned memory store holding at most
// maxEntries sessions, whose metrics carry the store label cache
// (metrics.CacheMemory or metrics.CacheRedisLocal).
func newMemoryStoreFor(maxEntries int, cache string) *MemoryStore {
	s := &MemoryStore{MaxEntries: maxEntries}
	s.init(cache)
	return s
}

func (s *MemoryStore) init(cache string) {
	s.memCore = &memCore{
		lru:    list.New(),
		byKey:  make(map[string]*list.Element),
		byLeaf: make(map[[32]byte]map[string]struct{}),
		now:    time.Now,
		gauges: newCacheMetrics(cache),
	}
}

// Provision sets up the store.
func (s *MemoryStore) Provision(caddy.Context) error {
	if s.MaxEntries == 0 {
		s.MaxEntries = defaultMemoryMaxEntries
	}
	s.init(metrics.CacheMemory)
	return nil
}

// Validate checks the configuration.
func (s *MemoryStore) Validate() error {
	if s.MaxEntries < 0 {
		return fmt.Errorf("max_entries: must be positive, got %d", s.MaxEntries)
	}
	return nil
}

// UnmarshalJSON decodes the module's config; see unmarshalStore.
func (s *MemoryStore) UnmarshalJSON(b []byte) error {
	type plain MemoryStore
	return unmarshalStore("memory", b, (*plain)(s))
}

// Put stores a session.
func (s *MemoryStore) Put(_ context.Context, handle, sealed []byte, leaf [32]byte, ttl time.Duration) error {
	key := string(handle)
	e := &memEntry{key: key, sealed: append([]byte(nil), sealed...), leaf: leaf, expires: s.now().Add(ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[key]; ok {
		s.removeLocked(el)
	}
	s.byKey[key] = s.lru.PushFront(e)
	s.gauges.entries.Inc()
	if leaf != ([32]byte{}) {
		set := s.byLeaf[leaf]
		if set == nil {
			set = make(map[string]struct{})
			s.byLeaf[leaf] = set
		}
		set[key] = struct{}{}
	}
	for s.lru.Len() > s.MaxEntries {
		s.removeLocked(s.lru.Back())
		s.gauges.capacity.Inc()
	}
	return nil
}

// lookupLocked returns the live entry for handle, dropping an expired one.
func (s *MemoryStore) lookupLocked(handle []byte) *list.Element {
	el, ok := s.byKey[string(handle)]
	if !ok {
		return nil
	}
	if !s.now().Before(el.Value.(*memEntry).expires) {
		s.removeLocked(el)
		s.gauges.expired.Inc()
		return nil
	}
	return el
}

func (s *MemoryStore) removeLocked(el *list.Element) {
	e := s.lru.Remove(el).(*memEntry)
	s.gauges.entries.Dec()
	delete(s.byKey, e.key)
	if set := s.byLeaf[e.leaf]; set != nil {
		delete(set, e.key)
		if len(set) == 0 {
			delete(s.byLeaf, e.leaf)
		}
	}
}

// Get returns a stored session or ErrMiss.
func (s *MemoryStore) Get(_ context.Context, handle []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el := s.lookupLocked(handle)
	if el == nil {
		return nil, ErrMiss
	}
	s.lru.MoveToFront(el)
	return el.Value.(*memEntry).sealed, nil
}

// Take returns a stored session and deletes it, or ErrMiss.
func (s *MemoryStore) Take(_ context.Context, handle []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el := s.lookupLocked(handle)
	if el == nil {
		return nil, ErrMiss
	}
	s.removeLocked(el)
	return el.Value.(*memEntry).sealed, nil
}

// remove drops the session stored under handle, if any (the Redis local
// cache hearing that another node took it).
func (s *MemoryStore) remove(handle []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byKey[string(handle)]; ok {
		s.removeLocked(el)
	}
}

// RevokeLeaf deletes every session of a client certificate.
func (s *MemoryStore) RevokeLeaf(_ context.Context, leaf [32]byte) (int, error) {
	if leaf == ([32]byte{}) {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for key := range s.byLeaf[leaf] {
		if el, ok := s.byKey[key]; ok {
			s.removeLocked(el)
			n++
		}
	}
	delete(s.byLeaf, leaf)
	return n, nil
}

// InvalidateAll deletes every session.
func (s *MemoryStore) InvalidateAll(context.Context) error {
	s.dropAll(true)
	return nil
}

// dropAll empties the store; flushed says whether the dropped sessions
// count as flush evictions (not when the store is closed).
func (s *MemoryStore) dropAll(flushed bool) {
	if s.memCore == nil {
		return // never provisioned (Caddy cleans up after a failed Provision)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := float64(s.lru.Len())
	s.gauges.entries.Sub(n)
	if flushed {
		s.gauges.flushed.Add(n)
	}
	s.lru.Init()
	clear(s.byKey)
	clear(s.byLeaf)
}

// ClaimEarlyData reports whether this is the first 0-RTT use of a session
// on this node.
func (s *MemoryStore) ClaimEarlyData(_ context.Context, handle []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el := s.lookupLocked(handle)
	if el == nil {
		return false, nil
	}
	e := el.Value.(*memEntry)
	first := !e.claimed
	e.claimed = true
	return first, nil
}

// Close drops every session (they leave caddy_tls_resume_store_cache_entries,
// and are not counted as evictions).
func (s *MemoryStore) Close() error {
	s.dropAll(false)
	return nil
}

// Cleanup drops every session when Caddy unloads the config, so that the
// entries gauge only counts stores in use.
func (s *MemoryStore) Cleanup() error { return s.Close() }

// UnmarshalCaddyfile sets up the store from a session_store block.
// Syntax:
//
//	session_store memory {
//		max_entries <n>
//	}
//
// The block may also hold the app's session_store_policy options, which
// the tls_resume parser takes out before this one runs.
func (s *MemoryStore) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // module name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := caddyfilex.NewOptionSet("session_store memory: duplicate option %q")
	for d.NextBlock(0) {
		opt := d.Val()
		if err := seen.Once(d, opt); err != nil {
			return err
		}
		if opt != "max_entries" {
			return d.Errf("session_store memory: unknown option %q", opt)
		}
		n, err := caddyfilex.PositiveInt(d, "session_store memory", opt)
		if err != nil {
			return err
		}
		s.MaxEntries = n
	}
	return nil
}

// Interface guards
var (
	_ caddy.Module          = (*MemoryStore)(nil)
	_ SessionStore          = (*MemoryStore)(nil)
	_ json.Unmarshaler      = (*MemoryStore)(nil)
	_ caddy.Provisioner     = (*MemoryStore)(nil)
	_ caddy.Validator       = (*MemoryStore)(nil)
	_ caddy.CleanerUpper    = (*MemoryStore)(nil)
	_ caddyfile.Unmarshaler = (*MemoryStore)(nil)
)
