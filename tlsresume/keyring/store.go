package keyring

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"time"

	"github.com/caddyserver/certmagic"
)

// Store keeps one named ring document in CertMagic storage, so that any
// storage backend Caddy users already run (file system, Redis, Consul, S3,
// databases) shares the ring across a fleet.
type Store struct {
	Storage certmagic.Storage
	// Name separates independent rings that share one storage.
	Name string
}

// Key is the storage key of the ring document.
func (s Store) Key() string { return path.Join("tls_resume", s.Name, "ring.json") }

func (s Store) lockName() string { return "tls_resume_ring_" + s.Name }

// errNoRing means storage holds no ring document yet.
var errNoRing = errors.New("no ring document in storage")

// Load reads the sealed ring document. It returns errNoRing when there is
// none.
func (s Store) Load(ctx context.Context) ([]byte, error) {
	data, err := s.Storage.Load(ctx, s.Key())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoRing
	}
	return data, err
}

// updateFunc receives the current document (nil when storage holds none)
// and returns the document to write, or nil to leave storage unchanged. It
// must not modify cur.
type updateFunc func(cur *Document) (*Document, error)

// Update changes the ring under the storage lock so that exactly one node
// writes each change. keks[0] seals what is written; every KEK in keks may
// open what is read. A document that none of keks can open (another KEK, or
// corruption) is never overwritten: Update returns the error. A document
// opened with an older KEK is re-sealed under keks[0] even if fn changes
// nothing (the KEK rollover).
//
// The document written gets a version above both cur's and next's.
//
// It returns the document storage holds afterwards.
func (s Store) update(ctx context.Context, keks []*KEK, now time.Time, fn updateFunc) (*Document, error) {
	if err := s.Storage.Lock(ctx, s.lockName()); err != nil {
		return nil, fmt.Errorf("locking ring %q: %w", s.Name, err)
	}
	defer func() {
		// Unlock with a fresh context: the caller's may be done, and a
		// stale lock would stall every other node's rotation.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = s.Storage.Unlock(uctx, s.lockName())
	}()

	var cur *Document
	reseal := false
	data, err := s.Load(ctx)
	switch {
	case errors.Is(err, errNoRing):
	case err != nil:
		return nil, fmt.Errorf("loading ring %q: %w", s.Name, err)
	default:
		var idx int
		cur, idx, err = Open(data, keks, s.Name)
		if err != nil {
			return nil, err
		}
		reseal = idx > 0
	}

	next, err := fn(cur)
	if err != nil {
		return nil, err
	}
	if next == nil {
		if !reseal {
			return cur, nil
		}
		next = cur.Clone()
	}
	// Versions only grow: a node writing back the ring it holds over an
	// older or deleted document (see Sync) passes
	// a next whose version already exceeds cur's.
	if cur != nil {
		next.Version = max(next.Version, cur.Version)
	}
	next.Version++
	next.Updated = now
	sealed, err := Seal(next, keks[0], s.Name)
	if err != nil {
		return nil, err
	}
	if err := s.Storage.Store(ctx, s.Key(), sealed); err != nil {
		return nil, fmt.Errorf("storing ring %q: %w", s.Name, err)
	}
	return next, nil
}
