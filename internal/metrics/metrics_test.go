package metrics

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegisterTwiceAndNames(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := Register(reg); err != nil {
		t.Fatalf("second Register: %v", err)
	}
	Handshakes.WithLabelValues("srv0", "true", "true").Inc()
	EarlyDataRequests.WithLabelValues("rejected").Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{
		"caddy_tls_resume_handshakes_total",
		"caddy_tls_resume_early_data_requests_total",
		"caddy_tls_resume_ring_rotations_total",
		"caddy_tls_resume_ring_current_key_age_seconds",
	} {
		if !names[want] {
			t.Errorf("metric %s not gathered; have %v", want, names)
		}
	}
	if n := testutil.CollectAndCount(Handshakes, "caddy_tls_resume_handshakes_total"); n < 1 {
		t.Errorf("handshakes series = %d", n)
	}
}

func TestKeyAge(t *testing.T) {
	SetCurrentKeyActivation(time.Time{})
	if !math.IsNaN(currentKeyAge()) {
		t.Fatal("want NaN without a ring")
	}
	SetCurrentKeyActivation(time.Now().Add(-90 * time.Second))
	if age := currentKeyAge(); age < 89 || age > 120 {
		t.Fatalf("age = %v", age)
	}
	const want = "caddy_tls_resume_ring_current_key_age_seconds"
	if err := testutil.CollectAndCompare(RingRotations, strings.NewReader(""), want); err != nil {
		t.Fatal(err)
	}
}

// The duration histograms must resolve 50µs to 100ms: both are bucket
// bounds, the bounds grow, and no step inside that range is wider than 2×.
func TestLatencyBuckets(t *testing.T) {
	has := map[float64]bool{}
	for i, b := range latencyBuckets {
		has[b] = true
		if i == 0 {
			continue
		}
		prev := latencyBuckets[i-1]
		if b <= prev {
			t.Fatalf("bucket %d (%g) not above %g", i, b, prev)
		}
		if prev >= 50e-6 && b <= 100e-3 && b/prev > 2.0001 {
			t.Errorf("step %g → %g is wider than 2×", prev, b)
		}
	}
	for _, want := range []float64{50e-6, 100e-3} {
		if !has[want] {
			t.Errorf("%g s is not a bucket bound", want)
		}
	}
}

// Observing on a resolved child and adding to a resolved gauge allocate
// nothing: these run on every handshake and every cache operation.
func TestHotPathAllocationFree(t *testing.T) {
	h := HandshakeDuration.WithLabelValues("alloc", "true", "true")
	g := StoreCacheEntries.WithLabelValues(CacheMemory)
	c := HandshakeRefusals.WithLabelValues("alloc", "verifier")
	if n := testing.AllocsPerRun(1000, func() {
		h.Observe(0.0004)
		g.Add(1)
		g.Sub(1)
		c.Inc()
		StoreCircuitOpen.Set(0)
	}); n != 0 {
		t.Fatalf("%v allocations per observation", n)
	}
}
