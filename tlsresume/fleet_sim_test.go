package tlsresume

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
	"go.uber.org/zap"
)

type simNode struct {
	sync     *keyring.Sync
	rings    *keyring.Holder
	cfg      keyring.SyncConfig
	offset   time.Duration
	nextPoll time.Time
}

func newSimFleet(t *testing.T, clock *fakeClock, sched keyring.Schedule, poll time.Duration, offsets []time.Duration) []*simNode {
	t.Helper()
	kek := testKEK(t, 1)
	st := &certmagic.FileStorage{Path: t.TempDir()}
	var nodes []*simNode
	for _, off := range offsets {
		n := &simNode{offset: off}
		n.rings = new(keyring.Holder)
		n.cfg = keyring.SyncConfig{
			Store:    keyring.Store{Storage: st, Name: "sim"},
			KEKs:     []*keyring.KEK{kek},
			Schedule: sched,
			Poll:     poll,
			Holder:   n.rings,
			Logger:   zap.NewNop(),
			Now:      func() time.Time { return clock.now().Add(off) },
		}
		n.sync = keyring.NewSync(n.cfg)
		nodes = append(nodes, n)
	}
	return nodes
}

// TestFleetSimulation runs three nodes whose clocks disagree by up to 80s
// through several scheduled and forced rotations, sealing a ticket on one
// node every simulated second and opening it on another some time later.
// Every ticket younger than its lifetime must open everywhere; every ticket
// older must not.
func TestFleetSimulation(t *testing.T) {
	clock := &fakeClock{t: t0}
	poll := 20 * time.Second
	skew := time.Minute
	sched := keyring.Schedule{Interval: 10 * time.Minute, Lifetime: 3 * time.Minute, Lead: 2*poll + skew}
	nodes := newSimFleet(t, clock, sched, poll, []time.Duration{-40 * time.Second, 0, 40 * time.Second})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	b := &ticketBinding{realm: [32]byte{7}, realmHint: realmHintOf([32]byte{7}), lifetime: int64(sched.Lifetime / time.Second)}

	type issued struct {
		ticket []byte
		at     time.Time // global clock
		from   int
	}
	var pending []issued
	opened, refusedOther, expiredOK := 0, 0, 0
	sealers := map[uint32]bool{}
	const total = 50 * time.Minute
	for elapsed := time.Duration(0); elapsed < total; elapsed += time.Second {
		for _, n := range nodes {
			if now := n.sync.Now(); !now.Before(n.nextPoll) {
				if err := n.sync.Step(ctx); err != nil {
					t.Fatalf("step: %v", err)
				}
				n.nextPoll = now.Add(poll)
			}
		}
		// Two forced rotations from different nodes, mid-interval.
		if elapsed == 14*time.Minute || elapsed == 33*time.Minute+17*time.Second {
			if err := nodes[int(elapsed/time.Minute)%3].sync.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
		}

		from := rng.IntN(len(nodes))
		fn := nodes[from]
		r := fn.rings.Load()
		if r == nil {
			t.Fatalf("node %d has no ring at %s", from, elapsed)
		}
		k := r.SealingKey(fn.sync.Now())
		sealers[k.ID] = true
		tk, err := b.sealTicket(k, fn.sync.Now(), fn.sync.Now(), "api.example.com", []byte("state"))
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, issued{tk, clock.now(), from})

		// Each ticket is opened on another node twice: once at a random
		// young age, once after it expired.
		keep := pending[:0]
		for _, p := range pending {
			age := clock.now().Sub(p.at)
			to := (p.from + 1 + int(p.at.Unix())%2) % len(nodes)
			tn := nodes[to]
			// The opening node's clock may run 80s ahead of the sealer's,
			// so only tickets younger than lifetime minus that skew are
			// certain to open, and only older than lifetime plus it to fail.
			young := time.Duration(p.at.Unix()%int64((sched.Lifetime-2*skew)/time.Second)) * time.Second
			switch age {
			case young:
				if _, why := b.openTicket(tn.rings.Load(), p.ticket, tn.sync.Now(), "api.example.com"); why != accepted {
					t.Fatalf("at %s: ticket sealed on node %d %s ago refused by node %d: %s", elapsed, p.from, age, to, why)
				}
				opened++
			case sched.Lifetime + 2*skew:
				_, why := b.openTicket(tn.rings.Load(), p.ticket, tn.sync.Now(), "api.example.com")
				switch why {
				case accepted:
					t.Fatalf("ticket %s old accepted", age)
				case rejectExpired, rejectUnknownKey, rejectRetiredKey:
					expiredOK++
				default:
					refusedOther++
				}
				continue
			}
			keep = append(keep, p)
		}
		pending = keep
		clock.add(time.Second)
	}
	var rotations uint64
	for i, n := range nodes {
		held := n.sync.State().Held
		rotations = held.Rotations
		if len(held.Keys) > 4 {
			t.Errorf("node %d holds %d keys: retired keys not pruned", i, len(held.Keys))
		}
	}
	// 50 minutes at a 10-minute interval with two forced rotations: at
	// least five switches of the sealing key.
	if len(sealers) < 6 {
		t.Errorf("only %d distinct sealing keys used in %s", len(sealers), total)
	}
	if refusedOther != 0 {
		t.Errorf("%d old tickets refused for an unexpected reason", refusedOther)
	}
	if expiredOK < 2500 {
		t.Errorf("only %d expired tickets checked", expiredOK)
	}
	t.Logf("opened %d cross-node tickets, %d expired ones refused, ring rotations %d, %d sealing keys", opened, expiredOK, rotations, len(sealers))
}
