package upstream

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

// Limits of full_handshake_every.
const (
	// minFullHandshakeEvery is the shortest full_handshake_every accepted:
	// below it nearly every new upstream connection would be a full
	// handshake, which is what `session_reuse off` says more plainly.
	minFullHandshakeEvery = time.Second
)

// Reasons of metrics.UpstreamHandshakeFailures.
const (
	failCertificate = "certificate"
	failAlert       = "alert"
	failTimeout     = "timeout"
	failOther       = "other"
)

// handshakeHealth watches the upstream TLS handshakes of one transport: it
// counts and logs failed ones, and, when the transport has a session cache,
// records full handshakes and failure streaks per cache key in the shared
// store, which the cache consults to schedule full handshakes
// (full_handshake_every).
//
// Nothing here runs on a request whose round trip succeeds unless
// full_handshake_every is set: failures are seen on the error path, and
// only the full-handshake schedule needs to see every handshake (see
// watch).
type handshakeHealth struct {
	cache  *sessionCache // nil: session reuse off (count and log only)
	logger *zap.Logger

	// serverName is the TLS client config's ServerName (tls_server_name);
	// serverNameHasPlaceholder says it is replaced per request, as Caddy's
	// transport does.
	serverName               string
	serverNameHasPlaceholder bool

	// schedule: full_handshake_every is set, every request is watched.
	schedule bool

	failures [4]prometheus.Counter // by failureReasons index
}

var failureReasons = [4]string{failCertificate, failAlert, failTimeout, failOther}

func newHandshakeHealth(cfg *tls.Config, cache *sessionCache, logger *zap.Logger, schedule bool) *handshakeHealth {
	h := &handshakeHealth{
		cache:                    cache,
		logger:                   logger,
		serverName:               cfg.ServerName,
		serverNameHasPlaceholder: strings.Contains(cfg.ServerName, "{"),
		schedule:                 schedule && cache != nil,
	}
	for i, r := range failureReasons {
		h.failures[i] = metrics.UpstreamHandshakeFailures.WithLabelValues(r)
	}
	return h
}

// serverKey returns the session cache key crypto/tls uses for req's
// upstream connection: the configured ServerName (placeholders replaced as
// Caddy's transport replaces them), or else the host net/http sets as the
// ServerName, which is the host of the request URL (Caddy's dial address).
func (h *handshakeHealth) serverKey(req *http.Request) string {
	if h.serverName == "" {
		return req.URL.Hostname()
	}
	if h.serverNameHasPlaceholder {
		if repl, ok := req.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
			return repl.ReplaceAll(h.serverName, "")
		}
	}
	return h.serverName
}

// handshakeWatch is the state of one watched request.
type handshakeWatch struct {
	h       *handshakeHealth
	req     *http.Request // the caller's request, for logging
	server  string
	failed  atomic.Bool // the trace saw a failed handshake
	tracing httptrace.ClientTrace
}

// watch returns req with a client trace that reports the TLS handshake of
// any connection net/http dials for it: a successful full handshake
// (DidResume false, so the chain was verified) is recorded as the server's
// last full handshake; a failure is counted and logged. It costs, per
// request, the watch (one allocation holding the trace), a trace closure,
// the context value and the request copy; nothing is locked unless a
// handshake happens.
func (h *handshakeHealth) watch(req *http.Request) (*http.Request, *handshakeWatch) {
	w := &handshakeWatch{h: h, req: req, server: h.serverKey(req)}
	w.tracing.TLSHandshakeDone = func(cs tls.ConnectionState, err error) {
		if err != nil {
			w.failed.Store(true)
			h.failed(w.req, w.server, err)
			return
		}
		if !cs.DidResume {
			h.fullHandshake(w.server)
		}
	}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), &w.tracing)), w
}

// fullHandshake records a successful full handshake to server.
func (h *handshakeHealth) fullHandshake(server string) {
	c := h.cache
	if c.store.markFull(c.key(server), c.now()) {
		c.logRecovered(server)
	}
}

// roundTripFailed inspects the error of a round trip (w is nil for an
// unwatched request) and reports it if it is a TLS handshake failure the
// trace did not already report.
func (h *handshakeHealth) roundTripFailed(req *http.Request, w *handshakeWatch, err error) {
	if w != nil && w.failed.Load() {
		return
	}
	if _, ok := handshakeFailure(err); !ok {
		return
	}
	server := ""
	if w != nil {
		server = w.server
	} else {
		server = h.serverKey(req)
	}
	h.failed(req, server, err)
}

// failed counts a failed handshake to server, drops the server's session,
// and logs the first failure of a streak at ERROR (every one when there is
// no session cache to keep the streak in).
func (h *handshakeHealth) failed(req *http.Request, server string, err error) {
	reason, ok := handshakeFailure(err)
	if !ok {
		return // e.g. the request was canceled mid-handshake
	}
	for i, r := range failureReasons {
		if r == reason {
			h.failures[i].Inc()
		}
	}
	if h.cache != nil && !h.cache.store.markFailed(h.cache.key(server)) {
		return
	}
	h.logger.Error("upstream TLS handshake failed",
		zap.String("upstream", req.URL.Host),
		zap.String("server_name", server),
		zap.String("reason", reason),
		zap.Error(err),
	)
}

// handshakeFailure classifies err: whether it is (or wraps) a failed TLS
// handshake with an upstream, and why. crypto/tls returns most handshake
// errors untyped, with a "tls: " prefix.
func handshakeFailure(err error) (reason string, ok bool) {
	if err == nil {
		return "", false
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return failCertificate, true
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return failAlert, true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" {
		// An alert from the upstream, e.g. it refused our certificate.
		return failAlert, true
	}
	msg := err.Error()
	if strings.Contains(msg, "TLS handshake timeout") {
		return failTimeout, true // net/http's tlsHandshakeTimeoutError
	}
	var rec tls.RecordHeaderError
	if errors.As(err, &rec) || strings.HasPrefix(msg, "tls: ") {
		return failOther, true
	}
	return "", false
}
