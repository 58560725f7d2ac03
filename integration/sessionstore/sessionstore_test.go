package sessionstore

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// recorder keeps the tickets the client is given, to show they are handles.
type recorder struct {
	tls.ClientSessionCache
	last []byte
}

func (r *recorder) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		if t, _, err := cs.ResumptionState(); err == nil {
			r.last = t
		}
	}
	r.ClientSessionCache.Put(key, cs)
}

// TestTwoNodesShareRedisSessions: two Caddy processes with one Redis
// session store resume each other's sessions; with Redis killed or hung
// every connection still succeeds (full handshakes, within the budget),
// and resumption returns with Redis.
func TestTwoNodesShareRedisSessions(t *testing.T) {
	srv := testredis.Must(t)
	set, files := harness.NewPKI(t)
	c := fleet{
		poll: "1s",
		store: []string{
			"key_prefix it:", "budget 100ms",
			"dial_timeout 10s", "read_timeout 10s", "write_timeout 10s",
			"breaker_threshold 3", "breaker_cooldown 500ms",
		},
		site: mtlsNameSite(files),
	}.start(t, srv)
	a, b := c.Node(0).Addr(), c.Node(1).Addr()
	ctx := context.Background()

	rec := &recorder{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	cfg := harness.ClientConfig(set, set.ClientA, "localhost")
	cfg.ClientSessionCache = rec
	awaitCrossResume(t, c, cfg, rec, 20*time.Second, "at start", srv.LogTail)
	if len(rec.last) != 33 || rec.last[0] != 2 {
		t.Fatalf("client ticket is %d bytes (version %d), want a 33-byte store handle", len(rec.last), rec.last[0])
	}
	if cs, err := harness.Handshake(ctx, a, cfg); err != nil || !cs.DidResume {
		t.Fatalf("node A did not resume node B's session: %v", err)
	}

	for _, fault := range []string{"kill", "pause"} {
		switch fault {
		case "kill":
			srv.Kill()
		case "pause":
			if err := srv.Pause(); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 10 {
			addr := []string{a, b}[i%2]
			start := time.Now()
			cs, err := harness.Handshake(ctx, addr, cfg)
			if err != nil {
				t.Fatalf("%s: connection %d failed: %v", fault, i, err)
			}
			// Two store calls of 100ms at most; slack for 2 busy
			// cores, far below the 10s socket timeouts.
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("%s: connection %d took %v", fault, i, took)
			}
			if cs.DidResume && i > 0 {
				t.Errorf("%s: connection %d resumed without Redis", fault, i)
			}
		}
		switch fault {
		case "kill":
			if err := srv.Restart(); err != nil {
				t.Fatal(err)
			}
		case "pause":
			if err := srv.Resume(); err != nil {
				t.Fatal(err)
			}
		}
		// Resumption through Redis returns.
		awaitCrossResume(t, c, cfg, rec, 15*time.Second, "after "+fault, srv.LogTail)
	}
}
