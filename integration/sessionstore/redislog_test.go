package sessionstore

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// TestRedisOutageLogsThroughCaddy: with Redis killed under two Caddy
// processes that keep handshaking, go-redis's complaints reach Caddy's log
// as JSON under the Redis store's logger, one WARN line when the outage
// starts and one INFO line when Redis answers again, per node; nothing of
// go-redis's own plain-text format ("redis: …") is written.
func TestRedisOutageLogsThroughCaddy(t *testing.T) {
	srv := testredis.Must(t)
	set, files := harness.NewPKI(t)
	c := fleet{
		poll:  "1s",
		store: []string{"key_prefix log:", "budget 100ms", "breaker_threshold 3", "breaker_cooldown 300ms"},
		site:  mtlsNameSite(files),
	}.start(t, srv)
	rec := &recorder{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	cfg := harness.ClientConfig(set, set.ClientA, "localhost")
	cfg.ClientSessionCache = rec
	awaitCrossResume(t, c, cfg, rec, 20*time.Second, "at start", srv.LogTail)

	srv.Kill()
	ctx := context.Background()
	for i := range 20 {
		if _, err := harness.Handshake(ctx, c.Node(i%2).Addr(), cfg); err != nil {
			t.Fatalf("connection %d with Redis down: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The outage in the metrics (issue 15): the circuit is open, and the
	// placeholder tickets handed out meanwhile come back as store errors,
	// not as "no ring" (the ring was fine).
	n0 := c.Node(0)
	if v := harness.Metric(t, n0.AdminURL("/metrics"), "caddy_tls_resume_store_circuit_open"); v != 1 {
		t.Errorf("store_circuit_open = %v during the outage, want 1", v)
	}
	noRing := harness.Metric(t, n0.AdminURL("/metrics"), `caddy_tls_resume_ticket_rejections_total{reason="no_ring"}`)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	awaitCrossResume(t, c, cfg, rec, 20*time.Second, "after kill", srv.LogTail)
	metrics := n0.AdminURL("/metrics")
	if v := harness.Metric(t, metrics, "caddy_tls_resume_store_circuit_open"); v != 0 {
		t.Errorf("store_circuit_open = %v after recovery, want 0", v)
	}
	if v := harness.Metric(t, metrics, `caddy_tls_resume_ticket_rejections_total{reason="no_ring"}`); v != noRing {
		t.Errorf("no_ring rejections grew from %v to %v: placeholder tickets of a store outage mislabelled", noRing, v)
	}
	if v := harness.Metric(t, metrics, `caddy_tls_resume_ticket_rejections_total{reason="store_error"}`); v < 1 {
		t.Errorf("no store_error rejection counted for the outage's placeholder tickets")
	}
	if v := harness.Metric(t, metrics, `caddy_tls_resume_store_operation_duration_seconds_count{op="put"}`); v < 1 {
		t.Errorf("store operation latency not observed")
	}

	for i := range 2 {
		n := c.Node(i)
		var warns, infos int
		var suppressed float64
		sc := bufio.NewScanner(strings.NewReader(n.Log()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "{") {
				if strings.Contains(line, "redis: ") {
					t.Errorf("%s: plain go-redis line in Caddy's output: %s", n.Name, line)
				}
				continue
			}
			var e map[string]any
			if json.Unmarshal([]byte(line), &e) != nil || e["logger"] != "tls_resume.session_stores.redis" {
				continue
			}
			switch e["msg"] {
			case "redis client error; repeats are suppressed until Redis answers again":
				warns++
				if e["level"] != "warn" || !strings.Contains(e["redis"].(string), "connection refused") {
					t.Errorf("%s: %s", n.Name, line)
				}
			case "redis client reaches Redis again":
				infos++
				s, _ := e["suppressed_messages"].(float64)
				suppressed += s
			default:
				t.Errorf("%s: unexpected line %s", n.Name, line)
			}
		}
		if warns != 1 || infos != 1 {
			t.Errorf("%s: %d WARN and %d INFO lines for one outage, want 1 and 1:\n%s", n.Name, warns, infos, n.LogTail(40))
		}
		t.Logf("%s: one outage, 1 WARN + 1 INFO line, %v go-redis lines suppressed", n.Name, suppressed)
	}
}
