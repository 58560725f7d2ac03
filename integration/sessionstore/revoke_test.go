package sessionstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
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
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	c := harness.StartCluster(t, 2, func(n harness.NodeInfo) string {
		return fmt.Sprintf(`{
	tls_resume {
		kek {env.TLS_RESUME_KEK}
		poll_interval 300ms
		max_clock_skew 300ms
		session_store redis {
			address %s
			key_prefix revoke:
		}
	}
}

https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	respond "%s"
}
`, srv.Addr, n.Port(), files.ServerCert, files.ServerKey, files.CA, n.Name)
	}, harness.WithEnv("TLS_RESUME_KEK="+base64.StdEncoding.EncodeToString(kek)))
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
