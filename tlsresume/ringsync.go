package tlsresume

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
	"github.com/tlsresume/caddy-tlsresume/storage"
)

// ringHolder publishes the current ring snapshot to handshakes.
type ringHolder struct{ p atomic.Pointer[ring] }

func (h *ringHolder) load() *ring   { return h.p.Load() }
func (h *ringHolder) store(r *ring) { h.p.Store(r) }

// ringSync keeps this node's snapshot in step with the ring in storage: it
// polls, rotates when the schedule says so (one node does it, under the
// storage lock), and retries storage failures with backoff forever.
type ringSync struct {
	store  storage.RingStore
	keks   []*storage.KEK // keks[0] seals; all open
	sched  Schedule
	poll   time.Duration
	gen    KeyGenerator
	now    func() time.Time
	logger *zap.Logger
	rings  *ringHolder

	// opTimeout bounds one storage round trip.
	opTimeout time.Duration

	mu         sync.Mutex // guards the fields below
	doc        *storage.RingDocument
	sealingID  uint32
	lastErr    error
	lastErrAt  time.Time
	failures   int
	lastSynced time.Time
}

const (
	minBackoff = 500 * time.Millisecond
)

// run polls until ctx is done.
func (s *ringSync) run(ctx context.Context) {
	backoff := minBackoff
	for {
		wait := s.poll
		if err := s.step(ctx); err != nil {
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

// step loads the ring, rotates it if the schedule says so, and installs
// the result. Errors are logged once per failure streak and counted.
func (s *ringSync) step(ctx context.Context) error {
	err := s.sync(ctx)
	s.recordResult(err)
	return err
}

func (s *ringSync) sync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()

	now := s.now()
	data, err := s.store.Load(ctx)
	var doc *storage.RingDocument
	switch {
	case errors.Is(err, storage.ErrNoRing):
		metrics.StoreOperations.WithLabelValues("ring_load", "miss").Inc()
	case err != nil:
		metrics.StoreOperations.WithLabelValues("ring_load", "error").Inc()
		return &ringError{op: "loading", err: err}
	default:
		metrics.StoreOperations.WithLabelValues("ring_load", "ok").Inc()
		var idx int
		doc, idx, err = storage.OpenRing(data, s.keks, s.store.Name)
		if err != nil {
			// Never use or overwrite a ring we cannot authenticate.
			s.rings.store(nil)
			return &ringError{op: "opening", err: err, kekID: s.keks[0].ID(), docKEKID: storage.PeekKEKID(data)}
		}
		if idx > 0 {
			// Opened with an older KEK: re-seal under the current one.
			return s.update(ctx, func(cur *storage.RingDocument) (*storage.RingDocument, error) { return nil, nil })
		}
	}

	if want, err := s.sched.Maintain(doc, now, s.gen); err != nil {
		return &ringError{op: "rotating", err: err}
	} else if want != nil {
		return s.update(ctx, func(cur *storage.RingDocument) (*storage.RingDocument, error) {
			// Decide again under the lock: another node may have done it.
			return s.sched.Maintain(cur, s.now(), s.gen)
		})
	}
	return s.install(doc)
}

// update changes the ring under the storage lock and installs the result.
func (s *ringSync) update(ctx context.Context, fn storage.UpdateFunc) error {
	doc, err := s.store.Update(ctx, s.keks, s.now(), fn)
	if err != nil {
		metrics.StoreOperations.WithLabelValues("ring_save", "error").Inc()
		return &ringError{op: "updating", err: err, kekID: s.keks[0].ID()}
	}
	metrics.StoreOperations.WithLabelValues("ring_save", "ok").Inc()
	return s.install(doc)
}

// install makes doc the snapshot handshakes use, if it is newer.
func (s *ringSync) install(doc *storage.RingDocument) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doc != nil && doc.Version == s.doc.Version && s.rings.load() != nil {
		if doc != s.doc {
			doc.Zero() // a fresh copy of what we already hold
		}
		s.observeActivation()
		return nil
	}
	r, err := newRing(doc, s.sched)
	if err != nil {
		return &ringError{op: "opening", err: err}
	}
	old := s.doc
	s.doc = doc
	s.rings.store(r)
	if old != nil && old != doc {
		// Secrets of the previous snapshot are no longer reachable from
		// the ring; clear our copy (keys pruned from the ring are gone).
		old.Zero()
	}
	if old == nil || old.Version != doc.Version {
		s.logger.Info("ticket-key ring loaded",
			zap.String("ring", s.store.Name),
			zap.Uint64("version", doc.Version),
			zap.Int("keys", len(doc.Keys)),
			zap.Uint64("rotations", doc.Rotations))
	}
	s.observeActivation()
	return nil
}

// observeActivation notices the sealing key changing by the schedule and
// records it in metrics and the log. s.mu must be held.
func (s *ringSync) observeActivation() {
	r := s.rings.load()
	if r == nil {
		metrics.SetCurrentKeyActivation(time.Time{})
		return
	}
	k := r.sealingKey(s.now())
	if k == nil {
		return
	}
	metrics.SetCurrentKeyActivation(k.activate)
	if s.sealingID != k.id {
		if s.sealingID != 0 {
			metrics.RingRotations.Inc()
			s.logger.Info("ticket sealing key rotated",
				zap.String("ring", s.store.Name),
				zap.String("key_id", keyIDString(k.id)),
				zap.String("previous_key_id", keyIDString(s.sealingID)))
		}
		s.sealingID = k.id
	}
}

func (s *ringSync) untilNextActivation() time.Duration {
	r := s.rings.load()
	if r == nil {
		return 0
	}
	now := s.now()
	for _, k := range r.keys {
		if k.activate.After(now) {
			return k.activate.Sub(now)
		}
	}
	return 0
}

// recordResult logs the first failure of a streak (and the recovery), so a
// long outage is one error line, not one per poll.
func (s *ringSync) recordResult(err error) {
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
	if errors.As(err, &re) && re.docKEKID != "" {
		fields = append(fields, zap.String("node_kek_id", re.kekID), zap.String("ring_kek_id", re.docKEKID))
	}
	if s.failures == 1 {
		msg := "ticket-key ring unavailable; serving full handshakes until it is, retrying with backoff"
		if errors.Is(err, storage.ErrOtherKEK) {
			msg = "ticket-key ring is sealed under another key-encryption key; it will not be used or overwritten; serving full handshakes (check the kek option on every node)"
		} else if errors.Is(err, storage.ErrRingCorrupt) {
			msg = "ticket-key ring failed authentication; it will not be used or overwritten; serving full handshakes"
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
}

func (e *ringError) Error() string { return e.op + " ring: " + e.err.Error() }
func (e *ringError) Unwrap() error { return e.err }

func keyIDString(id uint32) string {
	const hexdigits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = hexdigits[id&0xf]
		id >>= 4
	}
	return string(b[:])
}

// rotate forces a rotation across the fleet: the staged key seals as soon
// as every node can know it.
func (s *ringSync) rotate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	err := s.update(ctx, func(cur *storage.RingDocument) (*storage.RingDocument, error) {
		if cur == nil {
			return s.sched.Maintain(nil, s.now(), s.gen)
		}
		return s.sched.Rotate(cur, s.now(), s.gen)
	})
	s.recordResult(err)
	return err
}

// emergencyRotate drops every key of the ring at once (key compromise); see
// Schedule.Emergency.
func (s *ringSync) emergencyRotate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	err := s.update(ctx, func(cur *storage.RingDocument) (*storage.RingDocument, error) {
		return s.sched.Emergency(cur, s.now(), s.gen)
	})
	s.recordResult(err)
	if err == nil {
		s.logger.Warn("emergency rotation: every previous ticket key dropped and every earlier ticket invalidated",
			zap.String("ring", s.store.Name))
	}
	return err
}

// invalidate makes every ticket issued before the given time unusable on
// every node.
func (s *ringSync) invalidate(ctx context.Context, before time.Time) error {
	return s.edit(ctx, func(d *storage.RingDocument) bool {
		if !before.After(d.InvalidatedBefore) {
			return false
		}
		d.InvalidatedBefore = before
		return true
	})
}

// deny adds a client certificate to the fleet's deny list.
func (s *ringSync) deny(ctx context.Context, entry storage.DeniedCert) error {
	return s.edit(ctx, func(d *storage.RingDocument) bool {
		for _, e := range d.Denied {
			if e.SHA256 == entry.SHA256 && e.IssuerSHA256 == entry.IssuerSHA256 && e.Serial == entry.Serial {
				return false
			}
		}
		d.Denied = append(d.Denied, entry)
		return true
	})
}

// edit applies change to a copy of the stored ring (bootstrapping one if
// storage has none) and writes it if change reports a modification.
func (s *ringSync) edit(ctx context.Context, change func(*storage.RingDocument) bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	err := s.update(ctx, func(cur *storage.RingDocument) (*storage.RingDocument, error) {
		var d *storage.RingDocument
		if cur == nil {
			var err error
			if d, err = s.sched.Maintain(nil, s.now(), s.gen); err != nil {
				return nil, err
			}
		} else {
			d = cur.Clone()
		}
		if !change(d) && cur != nil {
			d.Zero()
			return nil, nil
		}
		return d, nil
	})
	s.recordResult(err)
	return err
}
