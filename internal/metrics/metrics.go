// Package metrics defines every Prometheus collector of caddy-tlsresume, under
// the contract names documented in docs/metrics.md (prefix caddy_tls_resume_).
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
// The same holds for histograms: resolve the prometheus.Observer once
// (HandshakeDuration.WithLabelValues(server, "true", "true")); Observe on it
// is a search over latencyBuckets (linear: client_golang searches fewer than
// 35 buckets linearly) and atomic adds, lock-free and allocation-free.
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
	Handshakes = counterVec("handshakes_total",
		"TLS handshakes completed on policies managed by tls_resume, by server, resumption and client authentication.",
		"server", "resumed", "mutual")

	// TicketRejections counts tickets that did not resume a session, by
	// reason (see the tlsresume package for the reason values).
	TicketRejections = counterVec("ticket_rejections_total",
		"Session tickets refused (the client got a full handshake), by reason.",
		"reason")

	// RingRotations counts the times the key sealing tickets on this
	// node changed: a scheduled activation, a forced rotation, or a ring
	// read from storage with another sealing key. The first key a node
	// loads is not counted.
	RingRotations = prometheus.NewCounter(prometheus.CounterOpts(opts("ring_rotations_total",
		"Ticket-key ring rotations (new sealing key activated) seen by this node.")))

	// ringCurrentKeyAge reports the age of the key currently sealing tickets.
	ringCurrentKeyAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("ring_current_key_age_seconds",
		"Seconds since the current ticket sealing key became active (NaN when no ring is loaded).")), currentKeyAge)

	// StoreOperations counts ring-storage and session-store operations by
	// op (ring_load, ring_save; put, get, take, claim_early_data) and
	// result ("ok", "miss", "error", "timeout", "open_circuit",
	// "replayed"; ring_load also "unauthentic", "rollback", "deleted").
	StoreOperations = counterVec("store_operations_total",
		"Ring storage and session store operations, by operation and result.",
		"op", "result")

	// EarlyDataRequests counts HTTP requests the early_data_guard saw
	// arrive in 0-RTT, by outcome ("allowed", "rejected").
	EarlyDataRequests = counterVec("early_data_requests_total",
		"Requests received as TLS early data (0-RTT), by the guard's outcome.",
		"outcome")

	// UpstreamHandshakes counts TLS handshakes the http_resume transport
	// made to upstreams, by resumed ("true"/"false").
	UpstreamHandshakes = counterVec("upstream_handshakes_total",
		"TLS handshakes from the reverse proxy to upstreams, by resumption.",
		"resumed")

	// UpstreamHandshakeFailures counts TLS handshakes from the http_resume
	// transport to upstreams that failed, by reason ("certificate": the
	// upstream's certificate did not verify; "alert": the upstream sent a
	// TLS alert, e.g. it refused the client certificate; "timeout";
	// "other").
	UpstreamHandshakeFailures = counterVec("upstream_handshake_failures_total",
		"Failed TLS handshakes from the reverse proxy to upstreams, by reason.",
		"reason")
	// HandshakeRefusals counts handshakes the plugin refused, full or
	// resumed (a resumption refused before its ticket was accepted
	// included), once per refused handshake. Labels: server (Caddy HTTP
	// server name), reason (at least "revoked": the client certificate
	// is on the deny list; "verifier": a client_auth verifier module or
	// the policy's own client certificate check said no).
	HandshakeRefusals = counterVec("handshake_refusals_total",
		"TLS handshakes refused by tls_resume (full or resumed), by server and reason.",
		"server", "reason")

	// HandshakeDuration observes server-side TLS handshake time on
	// policies the tls_resume app manages, in seconds, with the labels of
	// Handshakes. What exactly it spans is documented where it is
	// observed (the tlsresume package) and in docs/metrics.md.
	HandshakeDuration = latencyVec("handshake_duration_seconds",
		"Server-side TLS handshake time on policies managed by tls_resume, by server, resumption and client authentication.",
		"server", "resumed", "mutual")

	// VerifyDuration observes the time the client-authentication checks
	// alone take (deny list, client_auth verifier modules, the policy's
	// own checks), in seconds, by server and resumed. Revocation lookups
	// of verifier modules show up here.
	VerifyDuration = latencyVec("verify_duration_seconds",
		"Time spent in client certificate checks during TLS handshakes, by server and resumption.",
		"server", "resumed")

	// StoreOperationDuration observes how long one session store
	// operation took, in seconds, by op (the op values of
	// StoreOperations: "put", "get", "take", "claim_early_data").
	// Operations skipped because the circuit is open are not observed.
	StoreOperationDuration = latencyVec("store_operation_duration_seconds",
		"Session store operation latency as seen by the handshake, by operation.",
		"op")

	// StoreCircuitOpen is 1 while the session store's circuit breaker is
	// open (handshakes skip the store and use the fallback), else 0.
	StoreCircuitOpen = prometheus.NewGauge(prometheus.GaugeOpts(opts("store_circuit_open",
		"1 while the session store circuit breaker is open (handshakes skip the store), 0 otherwise.")))

	// StoreCacheEntries is the number of sessions held in this process's
	// session caches, by store: "memory" (the memory session store) or
	// "redis_local" (the Redis store's in-process cache). Expired entries
	// count until they are touched or evicted.
	StoreCacheEntries = prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("store_cache_entries",
		"Sessions held in this process's session caches, by store (memory, redis_local).")),
		[]string{"store"})

	// StoreCacheEvictions counts sessions dropped from those caches other
	// than by an explicit delete, by store and reason: "capacity" (the
	// least recently used entry, beyond max_entries or
	// local_cache_entries), "expired" (found past its lifetime), "flush"
	// (the whole cache emptied: an invalidation, and for redis_local also
	// a revocation, a Redis failure or a resubscription).
	StoreCacheEvictions = counterVec("store_cache_evictions_total",
		"Sessions dropped from this process's session caches other than by delete, by store and reason (capacity, expired, flush).",
		"store", "reason")
)

// opts names a collector caddy_tls_resume_<name>.
func opts(name, help string) prometheus.Opts {
	return prometheus.Opts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts(opts(name, help)), labels)
}

// latencyVec is a duration histogram (seconds) over latencyBuckets.
func latencyVec(name, help string, labels ...string) *prometheus.HistogramVec {
	o := opts(name, help)
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: o.Namespace, Subsystem: o.Subsystem, Name: o.Name, Help: o.Help,
		Buckets: latencyBuckets,
	}, labels)
}

// latencyBuckets are the upper bounds, in seconds, of the duration
// histograms (handshake, verification, session store operations). They
// resolve 50µs to 100ms in steps of at most 1.5× to 2× (so a quantile
// interpolated inside one bucket is off by less than its width), with one
// bucket below (25µs: "faster than we resolve") and two above (250ms, 1s:
// stalls such as a revocation lookup or a store call hitting its budget).
// 22 buckets: a histogram costs 25 series (the buckets, +Inf, _sum and
// _count) per label combination.
var latencyBuckets = []float64{
	0.000025, 0.00005, 0.000075,
	0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075,
	0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
	0.01, 0.015, 0.025, 0.05, 0.1,
	0.25, 1,
}

// Label values of StoreCacheEntries and StoreCacheEvictions.
const (
	CacheMemory     = "memory"      // the memory session store
	CacheRedisLocal = "redis_local" // the Redis store's in-process cache

	EvictCapacity = "capacity"
	EvictExpired  = "expired"
	EvictFlush    = "flush"
)

var all = []prometheus.Collector{
	Handshakes, TicketRejections, RingRotations, ringCurrentKeyAge,
	StoreOperations, EarlyDataRequests, UpstreamHandshakes,
	UpstreamHandshakeFailures,
	HandshakeRefusals, HandshakeDuration, VerifyDuration,
	StoreOperationDuration, StoreCircuitOpen, StoreCacheEntries, StoreCacheEvictions,
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
