package upstream

import (
	"crypto/tls"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

// countHandshakes makes cfg count every upstream handshake in
// metrics.UpstreamHandshakes, by whether it resumed a session.
//
// crypto/tls calls VerifyConnection on every client handshake, full or
// resumed (a resumed handshake skips certificate verification but not this
// callback), with ConnectionState.DidResume set. A VerifyConnection that
// was already configured runs first and keeps its veto; only handshakes it
// accepts are counted. The counters are resolved here, once, so the
// callback is an atomic add.
func countHandshakes(cfg *tls.Config) {
	resumed := metrics.UpstreamHandshakes.WithLabelValues(metrics.Bool(true))
	full := metrics.UpstreamHandshakes.WithLabelValues(metrics.Bool(false))
	cfg.VerifyConnection = verifyAndCount(cfg.VerifyConnection, resumed, full)
}

func verifyAndCount(next func(tls.ConnectionState) error, resumed, full prometheus.Counter) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if next != nil {
			if err := next(cs); err != nil {
				return err
			}
		}
		if cs.DidResume {
			resumed.Inc()
		} else {
			full.Inc()
		}
		return nil
	}
}
