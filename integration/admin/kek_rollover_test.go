package admin

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/tlsresume"
)

func newKEK(t *testing.T) string {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(k)
}

// TestKEKRollover executes the runbook's KEK rollover (docs/admin.md) on a
// two-node fleet, one node at a time, and checks after every reload that
// sessions keep resuming on both nodes and that no node fails to open the
// ring. A node that skips a phase loses the ring, which the test also shows.
func TestKEKRollover(t *testing.T) {
	set, files := harness.NewPKI(t)
	config := func(n harness.NodeInfo, kek, previous string) string {
		prev := ""
		if previous != "" {
			prev = "\n\t\tkek_previous {env." + previous + "}"
		}
		return fmt.Sprintf(`{
	tls_resume {
		kek {env.%s}%s
		poll_interval 1s
		max_clock_skew 1s
	}
}

https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	respond "ok"
}
`, kek, prev, n.Port(), files.ServerCert, files.ServerKey, files.CA)
	}
	c := harness.StartCluster(t, 2, func(n harness.NodeInfo) string { return config(n, "KEK_OLD", "") },
		harness.WithEnv("KEK_OLD="+newKEK(t), "KEK_NEW="+newKEK(t)))
	n0, n1 := c.Node(0), c.Node(1)
	ctx := context.Background()

	cfg := resumable(t, n0, set, set.ClientA)
	oldID := status(t, n0).KEKID
	if id := status(t, n1).KEKID; id != oldID {
		t.Fatalf("nodes start with KEK IDs %s and %s", oldID, id)
	}

	// healthy checks, after the other node has had two polls to read
	// what the reloaded one wrote, that both nodes hold the ring without
	// storage errors, and that the client's session resumes on both.
	healthy := func(step string) map[string]tlsresume.Status {
		t.Helper()
		time.Sleep(2500 * time.Millisecond)
		out := map[string]tlsresume.Status{}
		for _, n := range c.Nodes {
			st := status(t, n)
			if st.Store.Failures != 0 || st.Store.LastError != "" || st.SealingKeyID == "" {
				t.Fatalf("%s: %s cannot use the ring: %+v\n%s", step, n.Name, st.Store, n.LogTail(10))
			}
			got, err := harness.Handshake(ctx, n.Addr(), cfg)
			if err != nil || !got.DidResume {
				t.Fatalf("%s: session on %s: resumed=%v err=%v", step, n.Name, got.DidResume, err)
			}
			out[n.Name] = st
		}
		return out
	}
	reload := func(n *harness.Node, kek, previous string) {
		t.Helper()
		if err := n.SetConfig(config(n.NodeInfo, kek, previous)); err != nil {
			t.Fatal(err)
		}
		if err := n.Reload(); err != nil {
			t.Fatal(err)
		}
	}

	// Phase 1: every node learns the new KEK as a previous one; the ring
	// stays sealed under the old KEK.
	for _, n := range c.Nodes {
		reload(n, "KEK_OLD", "KEK_NEW")
		for name, st := range healthy("phase 1, " + n.Name + " reloaded") {
			if st.KEKID != oldID {
				t.Fatalf("phase 1: %s seals with %s, want the old KEK %s", name, st.KEKID, oldID)
			}
		}
	}

	// Phase 2: every node seals with the new KEK and keeps the old one as
	// previous. The first node reseals the ring; the other still opens it.
	var newID string
	for _, n := range c.Nodes {
		reload(n, "KEK_NEW", "KEK_OLD")
		sts := healthy("phase 2, " + n.Name + " reloaded")
		newID = sts[n.Name].KEKID
		if newID == oldID {
			t.Fatalf("phase 2: %s still reports the old KEK ID after reload (admin API bound to the old app?)", n.Name)
		}
	}

	// Phase 3: the old KEK is removed everywhere.
	for _, n := range c.Nodes {
		reload(n, "KEK_NEW", "")
		for name, st := range healthy("phase 3, " + n.Name + " reloaded") {
			if name == n.Name && st.KEKID != newID {
				t.Fatalf("phase 3: %s seals with %s, want %s", name, st.KEKID, newID)
			}
		}
	}

	// Control: a node still on the old KEK alone cannot open the ring; it
	// says so and serves full handshakes, never failing connections.
	reload(n1, "KEK_OLD", "")
	st := waitStatus(t, n1, "an error naming the other KEK", func(st tlsresume.Status) bool {
		return strings.Contains(st.Store.LastError, "another key-encryption key")
	})
	if st.SealingKeyID != "" {
		t.Errorf("control: node on the wrong KEK still reports a sealing key: %+v", st)
	}
	fresh := harness.ClientConfig(set, set.ClientA, "localhost")
	for i := range 2 {
		got, err := harness.Handshake(ctx, n1.Addr(), fresh)
		if err != nil || got.DidResume {
			t.Fatalf("control handshake %d on %s: resumed=%v err=%v", i, n1.Name, got.DidResume, err)
		}
	}
}
