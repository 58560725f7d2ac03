package sessionstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// fleet describes two Caddy processes sharing one ticket-key ring (a fresh
// KEK) and the Redis session store at a test's redis-server.
type fleet struct {
	// poll is the tls_resume poll_interval and max_clock_skew.
	poll string
	// globals are extra global option lines (e.g. a servers block).
	globals string
	// store are the lines of the session_store redis block after address.
	store []string
	// site returns each node's site block.
	site func(harness.NodeInfo) string
}

func (f fleet) start(t *testing.T, srv *testredis.Server) *harness.Cluster {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	storeLines := ""
	for _, l := range f.store {
		storeLines += "\t\t\t" + l + "\n"
	}
	return harness.StartCluster(t, 2, func(n harness.NodeInfo) string {
		return fmt.Sprintf(`{
%s	tls_resume {
		kek {env.TLS_RESUME_KEK}
		poll_interval %s
		max_clock_skew %s
		session_store redis {
			address %s
%s		}
	}
}

`, f.globals, f.poll, f.poll, srv.Addr, storeLines) + f.site(n)
	}, harness.WithEnv("TLS_RESUME_KEK="+base64.StdEncoding.EncodeToString(kek)))
}

// mtlsNameSite is an mTLS site that answers with the node's name.
func mtlsNameSite(files pki.SetFiles) func(harness.NodeInfo) string {
	return func(n harness.NodeInfo) string {
		return strings.TrimLeft(fmt.Sprintf(`
https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	respond "%s"
}
`, n.Port(), files.ServerCert, files.ServerKey, files.CA, n.Name), "\n")
	}
}

// awaitCrossResume handshakes with node A, then node B, until B resumes A's
// session with a 33-byte store handle as the ticket: both nodes must have
// loaded the shared ring and reached Redis first. Once within has passed it
// fails the test, naming when (e.g. "after kill") and showing the nodes'
// logs and, if redisLog is not nil, redis-server's, read at that moment.
func awaitCrossResume(t *testing.T, c *harness.Cluster, cfg *tls.Config, rec *recorder, within time.Duration, when string, redisLog func() string) {
	t.Helper()
	ctx := context.Background()
	a, b := c.Node(0).Addr(), c.Node(1).Addr()
	deadline := time.Now().Add(within)
	for {
		if _, err := harness.Handshake(ctx, a, cfg); err != nil {
			t.Fatal(err)
		}
		cs, err := harness.Handshake(ctx, b, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if cs.DidResume && len(rec.last) == 33 {
			return
		}
		if time.Now().After(deadline) {
			var redis string
			if redisLog != nil {
				redis = "redis:\n" + redisLog()
			}
			t.Fatalf("%s: node B never resumed node A's session through Redis within %v (last ticket %d bytes)\nA:\n%s\nB:\n%s\n%s",
				when, within, len(rec.last), c.Node(0).LogTail(20), c.Node(1).LogTail(20), redis)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
