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
