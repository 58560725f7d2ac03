package keyring

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Schedule holds the timing rules of the ring. Its methods are pure: given
// a ring document and a time they say what the ring must hold, so the rules
// are table-tested without storage or clocks.
//
// The life of a key:
//
//	published ──(≥ Lead)──▶ activate ──(Interval)──▶ retire ──(Lifetime+Lead)──▶ expire
//	  opens tickets            seals + opens             opens only                zeroed
//
// A key is published one full interval before it seals (at least Lead), so
// every node has polled it before any node seals with it, whatever the clock
// skew between them. A retired key keeps opening tickets until no ticket it
// sealed can still be accepted: a ticket lives Lifetime, and a node that has
// not yet seen a forced early rotation may seal with the old key up to Lead
// after the new key's activation.
type Schedule struct {
	// Interval is how long each key seals tickets.
	Interval time.Duration
	// Lifetime is how long a ticket is accepted after it was issued.
	Lifetime time.Duration
	// Lead is the least time a key is published before it seals: at least
	// two poll intervals plus the tolerated clock skew.
	Lead time.Duration
}

// Validate reports a schedule whose keys could seal before every node knows
// them.
func (s Schedule) Validate() error {
	switch {
	case s.Interval <= 0:
		return errors.New("rotation_interval must be positive")
	case s.Lifetime <= 0:
		return errors.New("ticket_lifetime must be positive")
	case s.Lead <= 0:
		return errors.New("staging lead time must be positive")
	case s.Lead >= s.Interval:
		return fmt.Errorf("rotation_interval %s is too short: keys must be published at least %s (two poll intervals plus clock skew) before they seal",
			s.Interval, s.Lead)
	}
	return nil
}

// KeyExpiry returns when key i of doc stops opening tickets; the zero time
// means it still seals or has not sealed yet (it is the newest key, or the
// key after it is not active).
func (s Schedule) KeyExpiry(doc *Document, i int) time.Time {
	if i+1 >= len(doc.Keys) {
		return time.Time{}
	}
	return doc.Keys[i+1].Activate.Add(s.Lifetime + s.Lead)
}

// KeyGenerator makes fresh ticket keys; tests substitute a deterministic one.
type KeyGenerator func() (Key, error)

// NewRandomKey generates a key with a random ID and secret.
func NewRandomKey() (Key, error) {
	var k Key
	var id [4]byte
	for k.ID == 0 {
		if _, err := rand.Read(id[:]); err != nil {
			return k, err
		}
		k.ID = binary.BigEndian.Uint32(id[:])
	}
	k.Secret = make([]byte, TicketKeySize)
	_, err := rand.Read(k.Secret)
	return k, err
}

// Maintain returns the document the ring must hold at now, or nil when doc
// needs no change. It bootstraps an empty ring (a key sealing now and the
// next one published), publishes the next key once the newest key has
// activated, and prunes keys whose tickets can no longer be accepted.
func (s Schedule) Maintain(doc *Document, now time.Time, gen KeyGenerator) (*Document, error) {
	if doc == nil || len(doc.Keys) == 0 {
		next := &Document{}
		if doc != nil {
			next = doc.Clone()
		}
		// Bootstrap: nobody can hold tickets yet, so the first key may seal
		// at once; the second is staged as usual.
		if err := s.appendKey(next, now, now, gen); err != nil {
			return nil, err
		}
		if err := s.appendKey(next, now, now.Add(s.Interval), gen); err != nil {
			return nil, err
		}
		return next, nil
	}

	var next *Document
	mutable := func() *Document {
		if next == nil {
			next = doc.Clone()
		}
		return next
	}

	// Prune expired keys (never the newest, which seals or will).
	expired := 0
	for i := range doc.Keys {
		exp := s.KeyExpiry(doc, i)
		if exp.IsZero() || !now.After(exp) {
			break
		}
		expired++
	}
	if expired > 0 {
		d := mutable()
		for i := range expired {
			clear(d.Keys[i].Secret)
		}
		d.Keys = append(d.Keys[:0], d.Keys[expired:]...)
	}

	// Publish the next key once the newest one has started sealing.
	cur := doc
	if next != nil {
		cur = next
	}
	newest := cur.Keys[len(cur.Keys)-1]
	if !newest.Activate.After(now) {
		d := mutable()
		activate := newest.Activate.Add(s.Interval)
		if earliest := now.Add(s.Lead); activate.Before(earliest) {
			// The fleet missed rotations (storage down, all nodes off):
			// stage properly rather than seal with an unpublished key.
			activate = earliest
		}
		if err := s.appendKey(d, now, activate, gen); err != nil {
			return nil, err
		}
		d.Rotations++
	}
	return next, nil
}

// rotate returns the document after a forced rotation at now: the staged
// key seals as soon as every node can know it (Lead after it was published,
// and no earlier than Lead from now), and a new key is staged after it.
func (s Schedule) rotate(doc *Document, now time.Time, gen KeyGenerator) (*Document, error) {
	d, err := s.Maintain(doc, now, gen)
	if err != nil {
		return nil, err
	}
	if d == nil {
		d = doc.Clone()
	}
	idx := -1
	for i, k := range d.Keys {
		if k.Activate.After(now) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return nil, errors.New("ring has no staged key to rotate to")
	}
	staged := &d.Keys[idx]
	activate := now.Add(s.Lead)
	if earliest := staged.Published.Add(s.Lead); activate.Before(earliest) {
		activate = earliest
	}
	if activate.Before(staged.Activate) {
		staged.Activate = activate
	}
	// Later staged keys shift with it, keeping the ring sorted and each
	// key sealing a full interval.
	for i := idx + 1; i < len(d.Keys); i++ {
		if min := d.Keys[i-1].Activate.Add(s.Interval); d.Keys[i].Activate.After(min) {
			d.Keys[i].Activate = min
		}
	}
	if idx == len(d.Keys)-1 {
		if err := s.appendKey(d, now, staged.Activate.Add(s.Interval), gen); err != nil {
			return nil, err
		}
	}
	d.Rotations++
	return d, nil
}

func (s Schedule) appendKey(d *Document, now, activate time.Time, gen KeyGenerator) error {
	for attempt := 0; ; attempt++ {
		k, err := gen()
		if err != nil {
			return fmt.Errorf("generating ticket key: %w", err)
		}
		if k.ID == 0 || d.hasKey(k.ID) {
			if attempt > 8 {
				return errors.New("generating ticket key: no unique key ID")
			}
			continue
		}
		k.Published = now
		k.Activate = activate
		d.Keys = append(d.Keys, k)
		return nil
	}
}

// Emergency returns the document after a key compromise at now: every key
// is dropped at once (a leaked key must stop opening tickets, staging or
// not), a fresh key seals immediately with the next one staged, and every
// ticket issued before now is invalidated. Nodes that have not polled yet
// keep sealing with a dropped key until they do; their tickets cost clients
// a full handshake elsewhere, which is the price of closing the leak now.
func (s Schedule) emergency(doc *Document, now time.Time, gen KeyGenerator) (*Document, error) {
	d := &Document{}
	if doc != nil {
		d = doc.Clone()
		for i := range d.Keys {
			clear(d.Keys[i].Secret)
		}
		d.Keys = nil
	}
	if err := s.appendKey(d, now, now, gen); err != nil {
		return nil, err
	}
	if err := s.appendKey(d, now, now.Add(s.Interval), gen); err != nil {
		return nil, err
	}
	if now.After(d.InvalidatedBefore) {
		d.InvalidatedBefore = now
	}
	d.Rotations++
	return d, nil
}
