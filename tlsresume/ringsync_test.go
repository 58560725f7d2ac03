package tlsresume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/storage"
)

// Invalidate and deny reach every node through the shared ring.
func TestInvalidateAndDenyAcrossNodes(t *testing.T) {
	clock := &fakeClock{t: t0}
	sched := Schedule{Interval: time.Hour, Lifetime: 10 * time.Minute, Lead: 3 * time.Minute}
	nodes := newSimFleet(t, clock, sched, time.Minute, []time.Duration{0, 0})
	ctx := context.Background()
	a, b := nodes[0].sync, nodes[1].sync
	if err := a.step(ctx); err != nil {
		t.Fatal(err)
	}
	bind := testBinding(1, false)
	tk, _ := bind.sealTicket(a.rings.load().sealingKey(clock.now()), clock.now(), clock.now(), "h", []byte("s"))
	clock.add(2 * time.Second)

	if err := a.invalidate(ctx, clock.now()); err != nil {
		t.Fatal(err)
	}
	set, _ := pki.NewSet(pki.ECDSAP256)
	sum := sha256.Sum256(set.ClientA.Cert.Raw)
	if err := a.deny(ctx, storage.DeniedCert{SHA256: hex.EncodeToString(sum[:]), Added: clock.now()}); err != nil {
		t.Fatal(err)
	}
	// Denying twice is a no-op.
	a.mu.Lock()
	v := a.doc.Version
	a.mu.Unlock()
	if err := a.deny(ctx, storage.DeniedCert{SHA256: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	if a.doc.Version != v {
		t.Error("duplicate deny rewrote the ring")
	}
	a.mu.Unlock()

	if err := b.step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, why := bind.openTicket(b.rings.load(), tk, clock.now(), "h"); why != rejectInvalidated {
		t.Fatalf("node b opened an invalidated ticket: %s", why)
	}
	if !b.rings.load().denies(set.ClientA.Cert) || b.rings.load().denies(set.ClientB.Cert) {
		t.Fatal("deny list not applied on node b")
	}
	// Tickets issued after the invalidation still open.
	clock.add(time.Second)
	tk2, _ := bind.sealTicket(b.rings.load().sealingKey(clock.now()), clock.now(), clock.now(), "h", []byte("s"))
	if _, why := bind.openTicket(a.rings.load(), tk2, clock.now(), "h"); why != accepted {
		t.Fatalf("fresh ticket: %s", why)
	}
}

// A node whose KEK does not open the stored ring never overwrites it, and
// keeps serving the ring it holds: an unauthentic document, whoever wrote
// it, must not take resumption or revocations away.
func TestOtherKEKNeverOverwrites(t *testing.T) {
	clock := &fakeClock{t: t0}
	sched := testSchedule()
	nodes := newSimFleet(t, clock, sched, time.Minute, []time.Duration{0, 0})
	ctx := context.Background()
	good, bad := nodes[0].sync, nodes[1].sync
	if err := good.step(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bad.step(ctx); err != nil {
		t.Fatal(err)
	}
	held := bad.rings.load()
	bad.keks = []*storage.KEK{testKEK(t, 99)}
	before, _ := good.store.Load(ctx)
	if err := bad.step(ctx); !errors.Is(err, storage.ErrOtherKEK) {
		t.Fatalf("step with another KEK: %v", err)
	}
	if bad.rings.load() != held {
		t.Fatal("node dropped the ring it holds")
	}
	if err := bad.rotate(ctx); !errors.Is(err, storage.ErrOtherKEK) {
		t.Fatalf("rotate with another KEK: %v", err)
	}
	after, _ := good.store.Load(ctx)
	if string(before) != string(after) {
		t.Fatal("ring overwritten")
	}
}

// An emergency rotation drops every key at once: tickets sealed before it
// open nowhere once nodes have polled, and the fresh key seals at once.
func TestEmergencyRotationDropsLeakedKeys(t *testing.T) {
	clock := &fakeClock{t: t0}
	sched := Schedule{Interval: time.Hour, Lifetime: 10 * time.Minute, Lead: 3 * time.Minute}
	nodes := newSimFleet(t, clock, sched, time.Minute, []time.Duration{0, 0})
	ctx := context.Background()
	a, b := nodes[0].sync, nodes[1].sync
	if err := a.step(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.step(ctx); err != nil {
		t.Fatal(err)
	}
	bind := testBinding(1, false)
	leaked := b.rings.load().sealingKey(clock.now())
	old, _ := bind.sealTicket(leaked, clock.now(), clock.now(), "h", []byte("s"))
	// A forger holding the leaked key can stamp any issue time.
	forgedLater, _ := bind.sealTicket(leaked, clock.now().Add(time.Hour), clock.now().Add(time.Hour), "h", []byte("s"))
	clock.add(time.Second)

	if err := a.emergencyRotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.step(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		r := n.sync.rings.load()
		if r.key(leaked.id) != nil {
			t.Fatal("leaked key still in the ring")
		}
		for _, tk := range [][]byte{old, forgedLater} {
			if _, why := bind.openTicket(r, tk, clock.now().Add(30*time.Minute), "h"); why == accepted {
				t.Fatal("ticket sealed with the leaked key still opens")
			}
		}
		if k := r.sealingKey(clock.now()); k == nil || k.id == leaked.id {
			t.Fatal("no fresh sealing key")
		}
	}
	clock.add(2 * time.Second)
	fresh, _ := bind.sealTicket(a.rings.load().sealingKey(clock.now()), clock.now(), clock.now(), "h", []byte("s"))
	if _, why := bind.openTicket(b.rings.load(), fresh, clock.now(), "h"); why != accepted {
		t.Fatalf("fresh ticket after emergency rotation: %s", why)
	}
}
