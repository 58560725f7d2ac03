package tlsresume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// Invalidate and deny reach every node through the shared ring.
func TestInvalidateAndDenyAcrossNodes(t *testing.T) {
	clock := &fakeClock{t: t0}
	sched := keyring.Schedule{Interval: time.Hour, Lifetime: 10 * time.Minute, Lead: 3 * time.Minute}
	nodes := newSimFleet(t, clock, sched, time.Minute, []time.Duration{0, 0})
	ctx := context.Background()
	a, b := nodes[0].sync, nodes[1].sync
	ar, br := nodes[0].rings, nodes[1].rings
	if err := a.Step(ctx); err != nil {
		t.Fatal(err)
	}
	bind := testBinding(1, false)
	tk, _ := bind.sealTicket(ar.Load().SealingKey(clock.now()), clock.now(), clock.now(), "h", []byte("s"))
	clock.add(2 * time.Second)

	if _, err := a.Invalidate(ctx, clock.now()); err != nil {
		t.Fatal(err)
	}
	set, _ := pki.NewSet(pki.ECDSAP256)
	sum := sha256.Sum256(set.ClientA.Cert.Raw)
	if _, err := a.Deny(ctx, keyring.DeniedCert{SHA256: hex.EncodeToString(sum[:]), Added: clock.now()}); err != nil {
		t.Fatal(err)
	}
	// Denying twice is a no-op.
	v := a.State().Held.Version
	if _, err := a.Deny(ctx, keyring.DeniedCert{SHA256: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	if a.State().Held.Version != v {
		t.Error("duplicate deny rewrote the ring")
	}

	if err := b.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, why := bind.openTicket(br.Load(), tk, clock.now(), "h"); why != rejectInvalidated {
		t.Fatalf("node b opened an invalidated ticket: %s", why)
	}
	if !br.Load().Denies(set.ClientA.Cert) || br.Load().Denies(set.ClientB.Cert) {
		t.Fatal("deny list not applied on node b")
	}
	// Tickets issued after the invalidation still open.
	clock.add(time.Second)
	tk2, _ := bind.sealTicket(br.Load().SealingKey(clock.now()), clock.now(), clock.now(), "h", []byte("s"))
	if _, why := bind.openTicket(ar.Load(), tk2, clock.now(), "h"); why != accepted {
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
	if err := good.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bad.Step(ctx); err != nil {
		t.Fatal(err)
	}
	held := nodes[1].rings.Load()
	// The same node, restarted with another KEK.
	cfg := nodes[1].cfg
	cfg.KEKs = []*keyring.KEK{testKEK(t, 99)}
	bad = keyring.NewSync(cfg)
	before, _ := cfg.Store.Load(ctx)
	if err := bad.Step(ctx); !errors.Is(err, keyring.ErrOtherKEK) {
		t.Fatalf("step with another KEK: %v", err)
	}
	if nodes[1].rings.Load() != held {
		t.Fatal("node dropped the ring it holds")
	}
	if err := bad.Rotate(ctx); !errors.Is(err, keyring.ErrOtherKEK) {
		t.Fatalf("rotate with another KEK: %v", err)
	}
	after, _ := cfg.Store.Load(ctx)
	if string(before) != string(after) {
		t.Fatal("ring overwritten")
	}
}

// An emergency rotation drops every key at once: tickets sealed before it
// open nowhere once nodes have polled, and the fresh key seals at once.
func TestEmergencyRotationDropsLeakedKeys(t *testing.T) {
	clock := &fakeClock{t: t0}
	sched := keyring.Schedule{Interval: time.Hour, Lifetime: 10 * time.Minute, Lead: 3 * time.Minute}
	nodes := newSimFleet(t, clock, sched, time.Minute, []time.Duration{0, 0})
	ctx := context.Background()
	a, b := nodes[0].sync, nodes[1].sync
	ar, br := nodes[0].rings, nodes[1].rings
	if err := a.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Step(ctx); err != nil {
		t.Fatal(err)
	}
	bind := testBinding(1, false)
	leaked := br.Load().SealingKey(clock.now())
	old, _ := bind.sealTicket(leaked, clock.now(), clock.now(), "h", []byte("s"))
	// A forger holding the leaked key can stamp any issue time.
	forgedLater, _ := bind.sealTicket(leaked, clock.now().Add(time.Hour), clock.now().Add(time.Hour), "h", []byte("s"))
	clock.add(time.Second)

	if err := a.EmergencyRotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Step(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		r := n.rings.Load()
		if r.Key(leaked.ID) != nil {
			t.Fatal("leaked key still in the ring")
		}
		for _, tk := range [][]byte{old, forgedLater} {
			if _, why := bind.openTicket(r, tk, clock.now().Add(30*time.Minute), "h"); why == accepted {
				t.Fatal("ticket sealed with the leaked key still opens")
			}
		}
		if k := r.SealingKey(clock.now()); k == nil || k.ID == leaked.ID {
			t.Fatal("no fresh sealing key")
		}
	}
	clock.add(2 * time.Second)
	fresh, _ := bind.sealTicket(ar.Load().SealingKey(clock.now()), clock.now(), clock.now(), "h", []byte("s"))
	if _, why := bind.openTicket(br.Load(), fresh, clock.now(), "h"); why != accepted {
		t.Fatalf("fresh ticket after emergency rotation: %s", why)
	}
}
