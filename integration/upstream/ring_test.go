package upstream

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestEdgeCaddyBackendsShareRing: Caddy edge → two Caddy backends, each its
// own process, running the tls_resume app on one storage (one ticket-key
// ring) and serving one server name with mTLS. The edge balances round
// robin with upstream keep-alive off, so consecutive connections alternate
// between the processes and each resumes the session the other one issued.
// The decisive check: the second backend's very first handshake — it has
// never issued a ticket — resumes the first backend's session.
func TestEdgeCaddyBackendsShareRing(t *testing.T) {
	requireTLSResumeApp(t)
	_, files := harness.NewPKI(t, "backend.internal")
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	backends := harness.StartCluster(t, 2, func(n harness.NodeInfo) string {
		return fmt.Sprintf(`{
	tls_resume {
		kek {env.TLS_RESUME_KEK}
	}
}

https://:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	header X-Backend %s
	respond "backend=%s resumed={http.request.tls.resumed}"
}
`, n.Port(), files.ServerCert, files.ServerKey, files.CA, n.Name, n.Name)
	}, harness.WithEnv("TLS_RESUME_KEK="+base64.StdEncoding.EncodeToString(kek)))

	site := fmt.Sprintf(`	reverse_proxy https://%s https://%s {
		lb_policy round_robin
		# The backends require client certificates, so Caddy insists that
		# Host matches the server name (421 otherwise).
		header_up Host backend.internal
		transport http_resume {
%s
		}
	}`, backends.Node(0).Addr(), backends.Node(1).Addr(), transportOptions(files, "tls_server_name backend.internal"))
	e := startEdge(t, "", site)
	c := e.counter()

	const n = 200
	var resumed, crossResumed int64
	prev := ""
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		body, backend := e.get("/")
		if backend != "node0" && backend != "node1" {
			t.Fatalf("request %d answered by %q: %s", i, backend, body)
		}
		isResumed := strings.HasSuffix(body, "resumed=true")
		if !isResumed && !strings.HasSuffix(body, "resumed=false") {
			t.Fatalf("request %d: unexpected body %q", i, body)
		}
		if i == 1 {
			if backend == prev {
				t.Fatalf("round robin sent the first two requests to %s", backend)
			}
			if !isResumed {
				t.Fatalf("%s's first handshake did not resume %s's session: the backends do not share a ring, or the edge did not offer it", backend, prev)
			}
		}
		if isResumed {
			resumed++
			if prev != "" && backend != prev {
				crossResumed++
			}
		}
		seen[backend] = true
		prev = backend
	}
	if len(seen) != 2 {
		t.Fatalf("only %v answered", seen)
	}
	requireResumeRate(t, "backend view", resumed, n)
	requireResumeRate(t, "resumed on the other process than the previous connection", crossResumed, n)
	r, f := c.delta()
	if r+f != n {
		t.Errorf("metric counted %v handshakes for %d requests", r+f, n)
	}
	if int64(r) != resumed {
		t.Errorf("edge metric says %v resumed, backends say %d", r, resumed)
	}
}
