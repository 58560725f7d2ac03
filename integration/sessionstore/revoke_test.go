package sessionstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// TestRevokeThroughAdminEndsSessionsOnBothNodes: two Caddy processes share
// sessions through Redis. Revoking client A through one node's admin API
// ends A's sessions on both nodes (no resumption, no full handshake either),
// while client B keeps resuming.
func TestRevokeThroughAdminEndsSessionsOnBothNodes(t *testing.T) {
	srv := testredis.Must(t)
	set, files := harness.NewPKI(t)
	c := fleet{poll: "300ms", store: []string{"key_prefix revoke:"}, site: mtlsNameSite(files)}.start(t, srv)
	nodes := []string{c.Node(0).Addr(), c.Node(1).Addr()}
	ctx := context.Background()

	cfgA := harness.ClientConfig(set, set.ClientA, "localhost")
	cfgB := harness.ClientConfig(set, set.ClientB, "localhost")
	// Establish resumable sessions for both clients across both nodes
	// (retrying while the nodes load the shared ring).
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := true
		for i, addr := range append(nodes, nodes...) {
			for name, conf := range map[string]*tls.Config{"A": cfgA, "B": cfgB} {
				st, err := harness.Handshake(ctx, addr, conf)
				if err != nil {
					t.Fatalf("client %s on %s: %v", name, addr, err)
				}
				if i > 0 && !st.DidResume {
					ok = false
				}
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sessions never resumed across the two nodes")
		}
		time.Sleep(200 * time.Millisecond)
	}

	sum := sha256.Sum256(set.ClientA.Cert.Raw)
	body := fmt.Sprintf(`{"sha256": %q}`, hex.EncodeToString(sum[:]))
	resp, err := http.Post("http://"+c.Node(0).AdminAddr+"/tls_resume/revoke", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %s", resp.Status)
	}

	// Node 1 picks the deny list up at its next poll.
	deadline = time.Now().Add(10 * time.Second)
	for _, addr := range nodes {
		for {
			if _, err := harness.Handshake(ctx, addr, cfgA); err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("revoked client A still admitted on %s", addr)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Neither resumed nor full: also without a session.
		fresh := harness.ClientConfig(set, set.ClientA, "localhost")
		if _, err := harness.Handshake(ctx, addr, fresh); err == nil {
			t.Fatalf("revoked client A admitted on %s with a full handshake", addr)
		}
		st, err := harness.Handshake(ctx, addr, cfgB)
		if err != nil || !st.DidResume {
			t.Fatalf("client B on %s after A's revocation: resumed=%v err=%v", addr, st.DidResume, err)
		}
	}
}
