package resume

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestFleetResumesThroughRotations: three Caddy processes share one storage
// directory and KEK. A client with one session cache spreads its mTLS
// connections round robin over them while the ring rotates every 4 seconds,
// so nearly every connection presents a ticket another process sealed, often
// with a key that process activated moments ago. At least 99.9% of the
// handshakes after the first must resume, through at least three rotations.
func TestFleetResumesThroughRotations(t *testing.T) {
	set, files := harness.NewPKI(t)
	kek := newKEK(t)
	c := harness.StartCluster(t, 3, func(n harness.NodeInfo) string {
		return `{
	tls_resume {
		kek {env.TLS_RESUME_KEK}
		rotation_interval 4s
		poll_interval 500ms
		max_clock_skew 200ms
		ticket_lifetime 1m
	}
}
` + mtlsSite(n.Port(), files, "")
	}, harness.WithEnv("TLS_RESUME_KEK="+kek))

	cfg := harness.ClientConfig(set, set.ClientA, "localhost")
	ctx := context.Background()
	const minRotations = 3
	deadline := time.Now().Add(60 * time.Second)
	var total, resumed int
	var misses []string
	for i := 0; time.Now().Before(deadline); i++ {
		node := c.Node(i % 3)
		st, err := harness.Handshake(ctx, node.Addr(), cfg)
		if err != nil {
			t.Fatalf("connection %d to %s: %v", i, node.Name, err)
		}
		if i > 0 {
			total++
			if st.DidResume {
				resumed++
			} else {
				misses = append(misses, fmt.Sprintf("#%d on %s at %s", i, node.Name, time.Now().Format("15:04:05.000")))
			}
		}
		// Stop once every node has seen enough rotations (checked every
		// 200 connections), keeping the run bounded.
		if i%200 == 199 && minObservedRotations(t, c) >= minRotations {
			break
		}
	}
	rot := minObservedRotations(t, c)
	rate := float64(resumed) / float64(total)
	t.Logf("%d of %d handshakes after the first resumed (%.3f%%) across %d+ rotations on every node; misses: %v",
		resumed, total, 100*rate, rot, misses)
	if rot < minRotations {
		t.Fatalf("only %d rotations observed within the time limit", rot)
	}
	if total < 300 {
		t.Fatalf("only %d handshakes: not a meaningful sample", total)
	}
	if rate < 0.999 {
		t.Fatalf("resumption rate %.3f%% < 99.9%%", 100*rate)
	}
}

// minObservedRotations is the smallest ring_rotations_total across nodes.
func minObservedRotations(t *testing.T, c *harness.Cluster) int {
	t.Helper()
	least := -1
	for _, n := range c.Nodes {
		v := int(harness.Metric(t, "http://"+n.AdminAddr+"/metrics", "caddy_tls_resume_ring_rotations_total"))
		if least < 0 || v < least {
			least = v
		}
	}
	return least
}
