package keyring

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

func kek(t *testing.T, seed byte) *KEK {
	t.Helper()
	m := bytes.Repeat([]byte{seed}, KEKSize)
	k, err := newKEK(m)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sampleDoc() *Document {
	return &Document{
		Version: 3,
		Keys: []Key{
			{ID: 1, Secret: bytes.Repeat([]byte{1}, TicketKeySize), Activate: time.Unix(100, 0)},
			{ID: 2, Secret: bytes.Repeat([]byte{2}, TicketKeySize), Activate: time.Unix(200, 0)},
		},
	}
}

func TestRingSealOpen(t *testing.T) {
	k1, k2 := kek(t, 1), kek(t, 2)
	sealed, err := Seal(sampleDoc(), k1, "prod")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, bytes.Repeat([]byte{1}, TicketKeySize)) {
		t.Fatal("key material in clear")
	}
	doc, idx, err := Open(sealed, []*KEK{k2, k1}, "prod")
	if err != nil || idx != 1 || doc.Version != 3 || len(doc.Keys) != 2 {
		t.Fatalf("open with second KEK: %v idx=%d %+v", err, idx, doc)
	}
	if _, _, err := Open(sealed, []*KEK{k2}, "prod"); !errors.Is(err, ErrOtherKEK) {
		t.Fatalf("other KEK: %v", err)
	}
	if _, _, err := Open(sealed, []*KEK{k1}, "staging"); !errors.Is(err, errRingCorrupt) {
		t.Fatalf("other ring name: %v", err)
	}
	for i := range sealed {
		c := bytes.Clone(sealed)
		c[i] ^= 0x20
		// A flip in a JSON field name's case still parses (encoding/json
		// matches names case-insensitively); what matters is that no
		// change yields a different document.
		if got, _, err := Open(c, []*KEK{k1}, "prod"); err == nil {
			if got.Version != 3 || len(got.Keys) != 2 || !bytes.Equal(got.Keys[1].Secret, bytes.Repeat([]byte{2}, TicketKeySize)) {
				t.Fatalf("flipping byte %d (%q) opened a different document", i, sealed[i])
			}
		}
	}
	if _, err := newKEK(make([]byte, 16)); err == nil {
		t.Fatal("16-byte KEK accepted")
	}
	if peekKEKID(sealed) != k1.ID() || k1.ID() == k2.ID() {
		t.Fatal("KEK IDs")
	}
}

func TestRingDocumentValidate(t *testing.T) {
	d := sampleDoc()
	d.Keys[1].ID = 1
	if err := d.validate(); err == nil {
		t.Fatal("duplicate IDs accepted")
	}
	d = sampleDoc()
	d.Keys[0].Secret = d.Keys[0].Secret[:5]
	if err := d.validate(); err == nil {
		t.Fatal("short secret accepted")
	}
	d = sampleDoc()
	d.Keys[0].Activate = time.Unix(300, 0)
	if err := d.validate(); err == nil {
		t.Fatal("unsorted keys accepted")
	}
}

func TestRingStoreUpdate(t *testing.T) {
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	rs := Store{Storage: st, Name: "prod"}
	k1, k2 := kek(t, 1), kek(t, 2)
	now := time.Unix(1000, 0)

	if _, err := rs.Load(ctx); !errors.Is(err, errNoRing) {
		t.Fatalf("empty storage: %v", err)
	}
	doc, err := rs.update(ctx, []*KEK{k1}, now, func(cur *Document) (*Document, error) {
		if cur != nil {
			t.Fatal("cur should be nil")
		}
		d := sampleDoc()
		d.Version = 0
		return d, nil
	})
	if err != nil || doc.Version != 1 {
		t.Fatalf("first write: %v %+v", err, doc)
	}
	// No change: storage untouched.
	before, _ := rs.Load(ctx)
	if _, err := rs.update(ctx, []*KEK{k1}, now, func(*Document) (*Document, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	after, _ := rs.Load(ctx)
	if !bytes.Equal(before, after) {
		t.Fatal("no-op update rewrote the ring")
	}
	// A node with another KEK can neither use nor overwrite it.
	called := false
	_, err = rs.update(ctx, []*KEK{k2}, now, func(*Document) (*Document, error) {
		called = true
		return sampleDoc(), nil
	})
	if !errors.Is(err, ErrOtherKEK) || called {
		t.Fatalf("other KEK: err=%v called=%v", err, called)
	}
	after2, _ := rs.Load(ctx)
	if !bytes.Equal(after, after2) {
		t.Fatal("ring overwritten by a node with another KEK")
	}
	// Rollover: k2 current, k1 previous. A no-op update re-seals under k2.
	doc, err = rs.update(ctx, []*KEK{k2, k1}, now, func(*Document) (*Document, error) { return nil, nil })
	if err != nil || doc.Version != 2 {
		t.Fatalf("reseal: %v %+v", err, doc)
	}
	data, _ := rs.Load(ctx)
	if peekKEKID(data) != k2.ID() {
		t.Fatal("not re-sealed under the new KEK")
	}
	// Versions only grow: a document written back over an older one (by a
	// node that holds a newer ring) keeps its higher version.
	doc, err = rs.update(ctx, []*KEK{k2}, now, func(cur *Document) (*Document, error) {
		d := cur.Clone()
		d.Version = 10
		return d, nil
	})
	if err != nil || doc.Version != 11 {
		t.Fatalf("write-back above the stored version: %v %+v", err, doc)
	}
	doc, err = rs.update(ctx, []*KEK{k2}, now, func(cur *Document) (*Document, error) { return cur.Clone(), nil })
	if err != nil || doc.Version != 12 {
		t.Fatalf("ordinary write after it: %v %+v", err, doc)
	}
	// Corruption is never overwritten either.
	if err := st.Store(ctx, rs.Key(), []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.update(ctx, []*KEK{k2}, now, func(*Document) (*Document, error) { return sampleDoc(), nil }); !errors.Is(err, errRingCorrupt) {
		t.Fatalf("corrupt ring: %v", err)
	}
}
