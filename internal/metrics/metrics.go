// Package metrics defines every Prometheus collector of caddy-tlsresume, under
// the contract names of DESIGN.md (prefix caddy_tls_resume_).
//
// Caddy gives each loaded config a fresh registry (ctx.GetMetricsRegistry()).
// The collectors here are process-global, like Caddy's own reverse proxy
// metrics, and Register adds them to whichever registry a module is
// provisioned with, so counters keep counting across config reloads and
// several modules can share them without duplicate-registration errors.
//
// Hot paths should resolve label values once at provision time (for example
// EarlyDataRequests.WithLabelValues("rejected")) and keep the returned
// prometheus.Counter: Inc on it is one atomic add, with no allocation.
package metrics

import (
	"errors"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "caddy"
const subsystem = "tls_resume"

var (
	// Handshakes counts completed server handshakes on policies the
	// tls_resume app manages. Labels: server (Caddy HTTP server name),
	// resumed ("true"/"false"), mutual ("true" when a client certificate
	// was presented).
	Handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "handshakes_total",
		Help: "TLS handshakes completed on policies managed by tls_resume, by server, resumption and client authentication.",
	}, []string{"server", "resumed", "mutual"})

	// TicketRejections counts tickets that did not resume a session, by
	// reason (see the tlsresume package for the reason values).
	TicketRejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "ticket_rejections_total",
		Help: "Session tickets refused (the client got a full handshake), by reason.",
	}, []string{"reason"})

	// RingRotations counts sealing-key rotations this node performed or
	// adopted.
	RingRotations = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "ring_rotations_total",
		Help: "Ticket-key ring rotations (new sealing key activated) seen by this node.",
	})

	// RingCurrentKeyAge reports the age of the key currently sealing tickets.
	RingCurrentKeyAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "ring_current_key_age_seconds",
		Help: "Seconds since the current ticket sealing key became active (NaN when no ring is loaded).",
	}, currentKeyAge)

	// StoreOperations counts storage and session-store operations by op
	// (for example ring_load, ring_save, get, put, delete, revoke) and
	// result ("ok", "miss", "error", "timeout", "open_circuit").
	StoreOperations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "store_operations_total",
		Help: "Ring storage and session store operations, by operation and result.",
	}, []string{"op", "result"})

	// EarlyDataRequests counts HTTP requests the early_data_guard saw
	// arrive in 0-RTT, by outcome ("allowed", "rejected").
	EarlyDataRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "early_data_requests_total",
		Help: "Requests received as TLS early data (0-RTT), by the guard's outcome.",
	}, []string{"outcome"})

	// UpstreamHandshakes counts TLS handshakes the http_resume transport
	// made to upstreams, by resumed ("true"/"false").
	UpstreamHandshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "upstream_handshakes_total",
		Help: "TLS handshakes from the reverse proxy to upstreams, by resumption.",
	}, []string{"resumed"})

	// UpstreamHandshakeFailures counts TLS handshakes from the http_resume
	// transport to upstreams that failed, by reason ("certificate": the
	// upstream's certificate did not verify; "alert": the upstream sent a
	// TLS alert, e.g. it refused the client certificate; "timeout";
	// "other").
	UpstreamHandshakeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem, Name: "upstream_handshake_failures_total",
		Help: "Failed TLS handshakes from the reverse proxy to upstreams, by reason.",
	}, []string{"reason"})
)

var all = []prometheus.Collector{
	Handshakes, TicketRejections, RingRotations, RingCurrentKeyAge,
	StoreOperations, EarlyDataRequests, UpstreamHandshakes,
	UpstreamHandshakeFailures,
}

// Register adds every collector to reg (Caddy's per-config registry).
// Registering on a registry that already has them is not an error. A nil
// registry (tests that build modules without a config) is ignored.
func Register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range all {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return err
		}
	}
	return nil
}

// keyActivatedAt holds the Unix nanoseconds at which the current sealing key
// became active; 0 means no ring is loaded.
var keyActivatedAt atomic.Int64

// SetCurrentKeyActivation records when the current sealing key became
// active; the zero time clears it.
func SetCurrentKeyActivation(t time.Time) {
	if t.IsZero() {
		keyActivatedAt.Store(0)
		return
	}
	keyActivatedAt.Store(t.UnixNano())
}

func currentKeyAge() float64 {
	ns := keyActivatedAt.Load()
	if ns == 0 {
		return math.NaN()
	}
	return time.Since(time.Unix(0, ns)).Seconds()
}

// Bool renders a label value for the boolean labels ("true"/"false")
// without allocating.
func Bool(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
