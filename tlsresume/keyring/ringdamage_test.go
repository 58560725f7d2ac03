package keyring

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// damageNode is one node on file storage, with its local ring copy in
// localDir, as App.Start builds it.
func damageNode(t *testing.T, clock *fakeClock, storageDir, localDir string) *Sync {
	t.Helper()
	st := &certmagic.FileStorage{Path: storageDir}
	s := &Sync{
		store:     Store{Storage: st, Name: "dmg"},
		keks:      []*KEK{testKEK(t, 1)},
		sched:     testSchedule(),
		poll:      time.Minute,
		gen:       NewRandomKey,
		now:       clock.now,
		logger:    zap.NewNop(),
		rings:     new(Holder),
		local:     newLocalRing(localDir, "dmg", st),
		opTimeout: 5 * time.Second,
	}
	s.loadLocal()
	return s
}

// Storage damage never lifts a revocation nor takes the held ring away:
// garbage, a deleted document, and an older authentic copy taken before the
// revocation, each on a running node and across a restart.
func TestStorageDamageKeepsRevocations(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	sum := sha256.Sum256(set.ClientA.Cert.Raw)
	revokedA := DeniedCert{SHA256: hex.EncodeToString(sum[:]), Added: t0, NotAfter: set.ClientA.Cert.NotAfter}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, ringFile string, older []byte)
	}{
		{"garbage", func(t *testing.T, ringFile string, _ []byte) {
			if err := os.WriteFile(ringFile, []byte("\x00garbage{"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func(t *testing.T, ringFile string, _ []byte) {
			if err := os.RemoveAll(filepath.Dir(filepath.Dir(ringFile))); err != nil {
				t.Fatal(err)
			}
		}},
		{"rolled back", func(t *testing.T, ringFile string, older []byte) {
			if err := os.WriteFile(ringFile, older, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := &fakeClock{t: t0}
			storageDir, localDir := t.TempDir(), t.TempDir()
			node := damageNode(t, clock, storageDir, localDir)
			if err := node.Step(ctx); err != nil {
				t.Fatal(err)
			}
			ringFile := filepath.Join(storageDir, node.store.Key())
			older, err := os.ReadFile(ringFile)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := node.Deny(ctx, revokedA); err != nil {
				t.Fatal(err)
			}
			held := node.rings.Load()
			version := node.heldVersion()
			if !held.Denies(set.ClientA.Cert) {
				t.Fatal("revocation not in force")
			}

			tc.damage(t, ringFile, older)
			clock.add(time.Second)
			_ = node.Step(ctx) // an error for garbage, a repair otherwise
			r := node.rings.Load()
			if r == nil || !r.Denies(set.ClientA.Cert) || r.Denies(set.ClientB.Cert) {
				t.Fatalf("running node after damage: ring %v, A denied %v", r != nil, r != nil && r.Denies(set.ClientA.Cert))
			}
			if r.SealingKey(clock.now()).ID != held.SealingKey(clock.now()).ID {
				t.Fatal("running node changed its sealing key: a new ring was minted")
			}
			if tc.name != "garbage" {
				// Repaired: storage holds the ring again, newer than both.
				if node.heldVersion() <= version {
					t.Fatalf("held version %d after repair, was %d", node.heldVersion(), version)
				}
				data, err := os.ReadFile(ringFile)
				if err != nil {
					t.Fatal(err)
				}
				doc, _, err := Open(data, node.keks, "dmg")
				if err != nil || doc.Version != node.heldVersion() || len(doc.Denied) != 1 {
					t.Fatalf("storage after repair: %v %+v", err, doc)
				}
				if st := node.status(); st == "" {
					t.Fatal("repair not reported")
				}
			}

			// A restart, storage damaged again the same way: the local copy
			// brings the ring and the revocation back.
			tc.damage(t, ringFile, older)
			restarted := damageNode(t, clock, storageDir, localDir)
			_ = restarted.Step(ctx)
			r = restarted.rings.Load()
			if r == nil || !r.Denies(set.ClientA.Cert) {
				t.Fatalf("restarted node: ring %v, A denied %v", r != nil, r != nil && r.Denies(set.ClientA.Cert))
			}
			if r.SealingKey(clock.now()).ID != held.SealingKey(clock.now()).ID {
				t.Fatal("restarted node minted a new ring")
			}
		})
	}
}

// status is the repair the node last reported, for tests.
func (s *Sync) status() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.anomaly
}

// A newer document written by a node without this node's history (for
// example one that started on emptied storage) loses none of the
// revocations this node holds: they are merged in, and written back so the
// other nodes learn them.
func TestNewerRingWithoutHistoryGetsRevocationsBack(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	sum := sha256.Sum256(set.ClientA.Cert.Raw)
	ctx := context.Background()
	clock := &fakeClock{t: t0}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := damageNode(t, clock, dirA, t.TempDir())
	if err := a.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Deny(ctx, DeniedCert{SHA256: hex.EncodeToString(sum[:]), Added: t0}); err != nil {
		t.Fatal(err)
	}
	// Another node on other storage builds a ring up to a higher version.
	b := damageNode(t, clock, dirB, t.TempDir())
	for range a.heldVersion() + 2 {
		if err := b.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(filepath.Join(dirB, b.store.Key()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirA, a.store.Key()), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if r := a.rings.Load(); !r.Denies(set.ClientA.Cert) {
		t.Fatal("revocation lost to a newer document")
	}
	stored, err := os.ReadFile(filepath.Join(dirA, a.store.Key()))
	if err != nil {
		t.Fatal(err)
	}
	doc, _, err := Open(stored, a.keks, "dmg")
	if err != nil || len(doc.Denied) != 1 || doc.Version <= b.heldVersion() {
		t.Fatalf("storage not given the revocation back: %v %+v", err, doc)
	}
}
