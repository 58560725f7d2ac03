package keyring

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

// Holder publishes the current ring snapshot to handshakes: a Sync stores,
// handshakes load, lock-free.
type Holder struct{ p atomic.Pointer[Snapshot] }

// Load returns the current snapshot, or nil while the node has no ring.
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// Store publishes r.
func (h *Holder) Store(r *Snapshot) { h.p.Store(r) }

// Sync keeps this node's snapshot in step with the ring in storage: it
// polls, rotates when the schedule says so (one node does it, under the
// storage lock), and retries storage failures with backoff forever.
//
// What it holds only moves forward. A stored document it cannot
// authenticate (corrupted, or sealed under another KEK) is neither used nor
// overwritten, and the node keeps serving the ring it holds. A deleted
// document, or an authentic one older than the one held (a replayed copy),
// is replaced by the held ring, written back with a higher version rather
// than a new ring minted. Every document read or written gets the
// revocations the node holds (revocations.go), and the held ring survives
// restarts in a local copy (local.go).
type Sync struct {
	store  Store
	keks   []*KEK // keks[0] seals; all open
	sched  Schedule
	poll   time.Duration
	gen    KeyGenerator
	now    func() time.Time
	logger *zap.Logger
	rings  *Holder
	// local, when set, keeps the held ring across restarts.
	local *localRing

	// opTimeout bounds one storage round trip.
	opTimeout time.Duration

	mu         sync.Mutex // guards the fields below
	doc        *Document
	sealingID  uint32
	lastErr    error
	lastErrAt  time.Time
	failures   int
	lastSynced time.Time
	// anomaly is the last problem found in storage and repaired (a
	// deleted or rolled-back document), reported once per occurrence.
	anomaly   string
	anomalyAt time.Time
}

// SyncConfig is what NewSync needs.
type SyncConfig struct {
	// Store is where the fleet's ring lives.
	Store Store
	// KEKs seal (the first) and open (all) the ring.
	KEKs []*KEK
	// Schedule is the ring's timing.
	Schedule Schedule
	// Poll is how often the ring is read from storage.
	Poll time.Duration
	// Holder receives every snapshot handshakes must use.
	Holder *Holder
	// LocalDir, when set, holds the node's last-known ring copy (under
	// tls_resume/last-known/), which survives restarts.
	LocalDir string
	Logger   *zap.Logger
	// Now is the node's clock; default time.Now.
	Now func() time.Time
}

// NewSync returns a synchroniser for cfg that starts from the node's
// last-known ring copy, if it has one: damaged shared storage can then
// neither lift a revocation nor roll the ring back, even across a restart.
// Nothing is read from shared storage until Step or Run.
func NewSync(cfg SyncConfig) *Sync {
	s := &Sync{
		store:     cfg.Store,
		keks:      cfg.KEKs,
		sched:     cfg.Schedule,
		poll:      cfg.Poll,
		gen:       NewRandomKey,
		now:       cfg.Now,
		logger:    cfg.Logger,
		rings:     cfg.Holder,
		opTimeout: 10 * time.Second,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.LocalDir != "" {
		s.local = newLocalRing(cfg.LocalDir, cfg.Store.Name, cfg.Store.Storage)
		s.loadLocal()
	}
	return s
}

// Now is the synchroniser's clock.
func (s *Sync) Now() time.Time { return s.now() }

const (
	minBackoff = 500 * time.Millisecond
)

// Run polls until ctx is done.
func (s *Sync) Run(ctx context.Context) {
	backoff := minBackoff
	for {
		wait := s.poll
		if err := s.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait = min(backoff, s.poll)
			backoff = min(backoff*2, s.poll)
		} else {
			backoff = minBackoff
			if until := s.untilNextActivation(); until > 0 && until < wait {
				// Wake at the scheduled switch to count it and refresh
				// the key-age gauge; the switch itself needs no I/O.
				wait = until + 10*time.Millisecond
			}
		}
		// Jitter spreads a fleet's storage reads.
		wait += time.Duration(rand.Int64N(int64(wait)/10 + 1))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// loadLocal installs the node's last-known-good ring, if it has one, so
// that it serves (and enforces the revocations) from its first handshake,
// whatever shared storage holds.
func (s *Sync) loadLocal() {
	if s.local == nil {
		return
	}
	doc, err := s.local.load(s.keks)
	switch {
	case errors.Is(err, errNoRing):
		return
	case err != nil:
		// For example a KEK change without kek_previous: the copy is
		// unusable, and the node starts without history.
		s.logger.Warn("ignoring this node's last-known ring copy",
			zap.String("path", s.local.path), zap.Error(err))
		return
	}
	if err := s.install(doc); err != nil {
		s.logger.Warn("ignoring this node's last-known ring copy",
			zap.String("path", s.local.path), zap.Error(err))
	}
}

// Step loads the ring, rotates it if the schedule says so, and installs
// the result. Errors are logged once per failure streak and counted.
func (s *Sync) Step(ctx context.Context) error {
	err := s.sync(ctx)
	s.recordResult(err)
	return err
}

func (s *Sync) sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()

	now := s.now()
	held := s.heldVersion()
	data, err := s.store.Load(ctx)
	var doc *Document
	switch {
	case errors.Is(err, errNoRing) && held > 0:
		// Deleted under us: write back what we hold, never a new ring
		// (a new ring would have no revocations).
		ringLoads[ringLoadDeleted].Inc()
		s.reportAnomaly(fmt.Sprintf("ring document missing from storage; writing back version %d held by this node", held))
		return s.update(ctx, nil)
	case errors.Is(err, errNoRing):
		ringLoads[ringLoadMiss].Inc()
	case err != nil:
		ringLoads[ringLoadError].Inc()
		return &ringError{op: "loading", err: err}
	default:
		var idx int
		doc, idx, err = Open(data, s.keks, s.store.Name)
		if err != nil {
			// Never use or overwrite a ring we cannot authenticate; keep
			// serving the one we hold.
			ringLoads[ringLoadUnauthentic].Inc()
			return &ringError{op: "opening", err: err, kekID: s.keks[0].ID(), docKEKID: peekKEKID(data), held: held}
		}
		ringLoads[ringLoadOK].Inc()
		if doc.Version < held {
			ringLoads[ringLoadRollback].Inc()
			s.reportAnomaly(fmt.Sprintf("ring document in storage is version %d, older than version %d held by this node (a replayed copy?); writing back the held ring", doc.Version, held))
			doc.zero()
			return s.update(ctx, nil)
		}
		if idx > 0 || !s.holdsRevocationsOf(doc) {
			// Opened with an older KEK (re-seal under the current one), or
			// missing revocations we hold (written by a node without our
			// history): write the merge.
			doc.zero()
			return s.update(ctx, nil)
		}
	}

	if want, err := s.sched.Maintain(doc, now, s.gen); err != nil {
		return &ringError{op: "rotating", err: err}
	} else if want != nil {
		return s.update(ctx, func(cur *Document) (*Document, error) {
			// Decide again under the lock: another node may have done it.
			return s.sched.Maintain(cur, s.now(), s.gen)
		})
	}
	return s.install(doc)
}

// update changes the ring under the storage lock and installs the result.
// fn sees the document to build on: the stored one, or the ring this node
// holds when storage has none or an older one. Whatever is written also
// carries every revocation the node holds. A nil fn changes nothing but
// that (and re-seals a ring opened with an older KEK).
func (s *Sync) update(ctx context.Context, fn updateFunc) error {
	held := s.heldCopy()
	if held != nil {
		defer held.zero()
	}
	doc, err := s.store.update(ctx, s.keks, s.now(), func(cur *Document) (*Document, error) {
		now := s.now()
		base, writeBack := cur, false
		if held != nil && (cur == nil || cur.Version < held.Version) {
			base, writeBack = held, true
		}
		var next *Document
		if fn != nil {
			var err error
			if next, err = fn(base); err != nil {
				return nil, err
			}
		}
		if next == nil {
			switch {
			case writeBack:
				next = held.Clone()
			case cur != nil && held != nil && !holdsRevocationsOf(cur, held, now):
				next = cur.Clone()
			default:
				return nil, nil
			}
		}
		if held != nil {
			mergeRevocations(next, held, now)
			// Above what storage holds and what we hold (Update adds 1).
			next.Version = max(next.Version, held.Version)
		}
		pruneDenied(next, now)
		return next, nil
	})
	if err != nil {
		ringSaves[ringSaveError].Inc()
		return &ringError{op: "updating", err: err, kekID: s.keks[0].ID()}
	}
	ringSaves[ringSaveOK].Inc()
	return s.install(doc)
}

// heldVersion is the version of the ring this node holds (0: none).
func (s *Sync) heldVersion() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc == nil {
		return 0
	}
	return s.doc.Version
}

// heldCopy returns a copy of the ring this node holds, or nil.
func (s *Sync) heldCopy() *Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc == nil {
		return nil
	}
	return s.doc.Clone()
}

// holdsRevocationsOf reports whether doc has every revocation in force that
// this node holds.
func (s *Sync) holdsRevocationsOf(doc *Document) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.doc == nil || holdsRevocationsOf(doc, s.doc, s.now())
}

// install makes doc the snapshot handshakes use, if it is newer than the
// one held, with every revocation of the held one (so a newer document
// written by a node without this node's history loses none). It keeps the
// local copy in step.
func (s *Sync) install(doc *Document) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.doc != nil && doc != s.doc {
		if doc.Version < s.doc.Version {
			doc.zero() // never go back
			s.observeActivation()
			return nil
		}
		mergeRevocations(doc, s.doc, now)
	}
	pruneDenied(doc, now)
	if s.doc != nil && doc.Version == s.doc.Version && s.rings.Load() != nil {
		if doc != s.doc {
			doc.zero() // a fresh copy of what we already hold
		}
		s.observeActivation()
		return nil
	}
	r, err := NewSnapshot(doc, s.sched)
	if err != nil {
		return &ringError{op: "opening", err: err}
	}
	old := s.doc
	s.doc = doc
	s.rings.Store(r)
	if old != nil && old != doc {
		// Secrets of the previous snapshot are no longer reachable from
		// the ring; clear our copy (keys pruned from the ring are gone).
		old.zero()
	}
	if old == nil || old.Version != doc.Version {
		s.logger.Info("ticket-key ring loaded",
			zap.String("ring", s.store.Name),
			zap.Uint64("version", doc.Version),
			zap.Int("keys", len(doc.Keys)),
			zap.Int("denied_certificates", len(doc.Denied)),
			zap.Uint64("rotations", doc.Rotations))
		s.saveLocal(doc)
	}
	s.observeActivation()
	return nil
}

// saveLocal writes the local copy; s.mu must be held. A failure is logged:
// the node goes on serving, but would not remember this version across a
// restart.
func (s *Sync) saveLocal(doc *Document) {
	if s.local == nil {
		return
	}
	if err := s.local.save(doc, s.keks[0]); err != nil {
		s.logger.Error("could not save the last-known ring copy on local disk; after a restart this node would not know this ring version",
			zap.String("path", s.local.path), zap.Uint64("version", doc.Version), zap.Error(err))
	}
}

// reportAnomaly logs, once per distinct problem, something found wrong in
// storage and being repaired.
func (s *Sync) reportAnomaly(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg == s.anomaly {
		return
	}
	s.anomaly, s.anomalyAt = msg, s.now()
	s.logger.Error("ticket-key ring storage damaged: "+msg,
		zap.String("ring", s.store.Name), zap.String("storage_key", s.store.Key()))
}

// observeActivation notices the sealing key changing by the schedule and
// records it in metrics and the log. s.mu must be held.
func (s *Sync) observeActivation() {
	r := s.rings.Load()
	if r == nil {
		metrics.SetCurrentKeyActivation(time.Time{})
		return
	}
	k := r.SealingKey(s.now())
	if k == nil {
		return
	}
	metrics.SetCurrentKeyActivation(k.Activate)
	if s.sealingID != k.ID {
		if s.sealingID != 0 {
			metrics.RingRotations.Inc()
			s.logger.Info("ticket sealing key rotated",
				zap.String("ring", s.store.Name),
				zap.String("key_id", FormatKeyID(k.ID)),
				zap.String("previous_key_id", FormatKeyID(s.sealingID)))
		}
		s.sealingID = k.ID
	}
}

func (s *Sync) untilNextActivation() time.Duration {
	r := s.rings.Load()
	if r == nil {
		return 0
	}
	now := s.now()
	for _, k := range r.keys {
		if k.Activate.After(now) {
			return k.Activate.Sub(now)
		}
	}
	return 0
}

// recordResult logs the first failure of a streak (and the recovery), so a
// long outage is one error line, not one per poll.
func (s *Sync) recordResult(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		if s.failures > 0 {
			s.logger.Info("ticket-key ring storage recovered",
				zap.String("ring", s.store.Name), zap.Int("failed_attempts", s.failures))
		}
		s.failures, s.lastErr = 0, nil
		s.lastSynced = s.now()
		return
	}
	s.failures++
	s.lastErr, s.lastErrAt = err, s.now()
	fields := []zap.Field{zap.String("ring", s.store.Name), zap.Error(err), zap.Int("attempt", s.failures)}
	var re *ringError
	if !errors.As(err, &re) {
		re = nil
	}
	if re != nil && re.docKEKID != "" {
		fields = append(fields, zap.String("node_kek_id", re.kekID), zap.String("ring_kek_id", re.docKEKID))
	}
	if s.failures == 1 {
		serving := "serving full handshakes"
		if re != nil && re.held > 0 {
			serving = fmt.Sprintf("serving the ring this node holds (version %d) with its revocations", re.held)
			fields = append(fields, zap.Uint64("held_version", re.held))
		}
		msg := "ticket-key ring unavailable; " + serving + ", retrying with backoff"
		if errors.Is(err, ErrOtherKEK) {
			msg = "ticket-key ring in storage is sealed under another key-encryption key; it will not be used or overwritten; " + serving + " (check the kek option on every node)"
		} else if errors.Is(err, errRingCorrupt) {
			msg = "ticket-key ring in storage failed authentication (corrupted or tampered with); it will not be used or overwritten; " + serving
		}
		s.logger.Error(msg, fields...)
	} else {
		s.logger.Debug("ticket-key ring still unavailable", fields...)
	}
}

// ringError says what the synchroniser was doing when storage failed.
type ringError struct {
	op              string
	err             error
	kekID, docKEKID string
	// held is the version of the ring the node keeps serving (0: none).
	held uint64
}

func (e *ringError) Error() string { return e.op + " ring: " + e.err.Error() }
func (e *ringError) Unwrap() error { return e.err }

// Results of the ring_load and ring_save operations in
// store_operations_total, resolved once.
const (
	ringLoadOK          = iota // opened, current or newer
	ringLoadMiss               // no ring yet: this node creates one
	ringLoadError              // storage failed
	ringLoadUnauthentic        // corrupted, or sealed under another KEK
	ringLoadRollback           // older than the held ring: written back
	ringLoadDeleted            // gone while this node holds one: written back
	numRingLoads
)

var ringLoads = func() (c [numRingLoads]prometheus.Counter) {
	for i, r := range [numRingLoads]string{"ok", "miss", "error", "unauthentic", "rollback", "deleted"} {
		c[i] = metrics.StoreOperations.WithLabelValues("ring_load", r)
	}
	return c
}()

const (
	ringSaveOK = iota
	ringSaveError
)

var ringSaves = [2]prometheus.Counter{
	ringSaveOK:    metrics.StoreOperations.WithLabelValues("ring_save", "ok"),
	ringSaveError: metrics.StoreOperations.WithLabelValues("ring_save", "error"),
}

// FormatKeyID is how logs, metrics and the status API name a ticket key:
// eight lowercase hex digits.
func FormatKeyID(id uint32) string {
	const hexdigits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = hexdigits[id&0xf]
		id >>= 4
	}
	return string(b[:])
}

// Rotate forces a rotation across the fleet: the staged key seals as soon
// as every node can know it.
func (s *Sync) Rotate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	err := s.update(ctx, func(cur *Document) (*Document, error) {
		if cur == nil {
			return s.sched.Maintain(nil, s.now(), s.gen)
		}
		return s.sched.rotate(cur, s.now(), s.gen)
	})
	s.recordResult(err)
	return err
}

// EmergencyRotate drops every key of the ring at once (key compromise); see
// Schedule.emergency.
func (s *Sync) EmergencyRotate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	err := s.update(ctx, func(cur *Document) (*Document, error) {
		return s.sched.emergency(cur, s.now(), s.gen)
	})
	s.recordResult(err)
	if err == nil {
		s.logger.Warn("emergency rotation: every previous ticket key dropped and every earlier ticket invalidated",
			zap.String("ring", s.store.Name))
	}
	return err
}

// Invalidate makes every ticket issued before the given time unusable on
// every node. It returns the invalidation time in force afterwards, which
// is later than before when an earlier invalidation reached further.
func (s *Sync) Invalidate(ctx context.Context, before time.Time) (time.Time, error) {
	err := s.edit(ctx, func(d *Document) bool {
		if !before.After(d.InvalidatedBefore) {
			return false
		}
		d.InvalidatedBefore = before
		return true
	})
	if err != nil {
		return time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc == nil {
		return before, nil
	}
	return s.doc.InvalidatedBefore, nil
}

// Deny adds a client certificate to the fleet's deny list. It returns the
// number of entries on the deny list the node holds afterwards.
func (s *Sync) Deny(ctx context.Context, entry DeniedCert) (int, error) {
	err := s.edit(ctx, func(d *Document) bool {
		// A duplicate changes nothing, unless it ends later.
		return mergeRevocations(d, &Document{Denied: []DeniedCert{entry}}, s.now())
	})
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc == nil {
		return 0, nil
	}
	return len(s.doc.Denied), nil
}

// edit applies change to a copy of the stored ring (bootstrapping one if
// storage has none) and writes it if change reports a modification.
func (s *Sync) edit(ctx context.Context, change func(*Document) bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	err := s.update(ctx, func(cur *Document) (*Document, error) {
		var d *Document
		if cur == nil {
			var err error
			if d, err = s.sched.Maintain(nil, s.now(), s.gen); err != nil {
				return nil, err
			}
		} else {
			d = cur.Clone()
		}
		if !change(d) && cur != nil {
			d.zero()
			return nil, nil
		}
		return d, nil
	})
	s.recordResult(err)
	return err
}

// State is what a node's synchroniser holds and knows of its storage, for
// status reports.
type State struct {
	// Held is a copy of the ring handshakes use, with its key secrets
	// cleared; nil when the node has none.
	Held *Document
	// LastRepair is the last damage found in storage and repaired.
	LastRepair   string
	LastRepairAt time.Time
	LastSynced   time.Time
	LastError    error
	LastErrorAt  time.Time
	// Failures counts the storage failures of the current streak.
	Failures int
}

// State returns the synchroniser's state now.
func (s *Sync) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{
		LastRepair: s.anomaly, LastRepairAt: s.anomalyAt,
		LastSynced: s.lastSynced,
		LastError:  s.lastErr, LastErrorAt: s.lastErrAt,
		Failures: s.failures,
	}
	// The ring handshakes use: none when the stored one could not be
	// opened (s.doc may still hold the last one this node loaded).
	if s.doc != nil && s.rings.Load() != nil {
		st.Held = s.doc.Clone()
		st.Held.zero()
	}
	return st
}

// Close clears the key material the synchroniser holds; call it once the
// config using it is unloaded.
func (s *Sync) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc != nil {
		s.doc.zero()
	}
}
