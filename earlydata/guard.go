package earlydata

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

func init() {
	caddy.RegisterModule(Guard{})
}

// Guard answers 425 Too Early (RFC 8470) to requests that arrived in TLS or
// QUIC early data (0-RTT) and are not safe to replay, so that the client
// retries them after the handshake, when they can no longer be replayed by
// whoever captured the early data.
//
// A request is early when it arrived before the handshake with Caddy
// completed (only possible over HTTP/3, where Caddy accepts 0-RTT unless the
// server option `allow_0rtt` is false), or when it carries an `Early-Data`
// header and the immediate peer is one of the server's `trusted_proxies` (an
// intermediary such as another Caddy forwarded it before its own handshake
// completed). An `Early-Data` header from a peer that is not a trusted proxy
// does not make the request early and is removed from the request.
//
// Early requests whose method is in `methods` pass, unless they match a
// `refuse` matcher set; early requests with any other method are refused
// unless they match an `allow` matcher set. A refused request gets a 425
// response written by the guard itself: its body is left unread and no
// handler after the guard runs (nor the server's error routes, which could
// otherwise act on the replayable request).
//
// Every early request sets the request variable `early_data` to true
// (placeholder `{http.vars.early_data}`), so that for example
// `log_append early_data {http.vars.early_data}` records it in the access
// log. The counter caddy_tls_resume_early_data_requests_total{outcome}
// counts early requests by outcome ("allowed" or "rejected"), and so does
// the status of the configuration's tls_resume app, when it has one.
//
// The guard costs one pointer check and one header lookup on a request that
// is not early. Put it before any handler that has side effects; the
// `early_data_guard` Caddyfile directive is ordered that way by default.
type Guard struct {
	// The request methods that may be served from early data. Method names
	// are case-insensitive here and compared in upper case. Default: GET,
	// HEAD and OPTIONS. An empty list is an error (to refuse every early
	// request, use a `refuse` matcher set that matches all requests).
	Methods []string `json:"methods,omitempty"`

	// Matcher sets selecting early requests that are refused even though
	// their method is in `methods`, for example a GET that logs the user
	// out or triggers a job. A request matching any of the sets is refused;
	// refusal takes precedence over `allow`.
	RefuseRaw caddyhttp.RawMatcherSets `json:"refuse,omitempty" caddy:"namespace=http.matchers"`

	// Matcher sets selecting early requests that are served even though
	// their method is not in `methods`. Only list routes whose handling is
	// idempotent: an attacker who captured the early data can replay them.
	AllowRaw caddyhttp.RawMatcherSets `json:"allow,omitempty" caddy:"namespace=http.matchers"`

	safeMethods []string
	refuse      caddyhttp.MatcherSets
	allow       caddyhttp.MatcherSets
	allowed     prometheus.Counter
	rejected    prometheus.Counter
	status      *statusCounter
	logger      *zap.Logger
}

// statusCounter finds, on the guard's first early request, the tls_resume
// app of the guard's configuration, which counts early requests in its
// status (GET /tls_resume/status). Not at provision time: the app
// provisions the http app, and so this handler, from its own Provision.
type statusCounter struct {
	ctx  caddy.Context
	once sync.Once
	app  earlyDataCounter // nil when the configuration has no tls_resume app
}

// earlyDataCounter is what the tls_resume app offers (its CountEarlyData).
type earlyDataCounter interface{ CountEarlyData(allowed bool) }

func (s *statusCounter) count(allowed bool) {
	if s == nil {
		return // a guard that was not provisioned (tests)
	}
	s.once.Do(func() {
		if app, err := s.ctx.AppIfConfigured("tls_resume"); err == nil {
			s.app, _ = app.(earlyDataCounter)
		}
	})
	if s.app != nil {
		s.app.CountEarlyData(allowed)
	}
}

// CaddyModule returns the Caddy module information.
func (Guard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.early_data_guard",
		New: func() caddy.Module { return new(Guard) },
	}
}

// Provision validates the configuration, loads the matchers and resolves the
// metric counters.
func (g *Guard) Provision(ctx caddy.Context) error {
	g.logger = ctx.Logger()

	methods, err := normalizeMethods(g.Methods)
	if err != nil {
		return err
	}
	g.safeMethods = methods
	for _, m := range methods {
		if !rfcSafeMethods[m] {
			g.logger.Warn("method is not safe (RFC 9110) but may be served from early data; early requests with it can be replayed",
				zap.String("method", m))
		}
	}

	if g.RefuseRaw != nil {
		mods, err := ctx.LoadModule(g, "RefuseRaw")
		if err != nil {
			return fmt.Errorf("refuse: loading matchers: %w", err)
		}
		if err := g.refuse.FromInterface(mods); err != nil {
			return fmt.Errorf("refuse: %w", err)
		}
	}
	if g.AllowRaw != nil {
		mods, err := ctx.LoadModule(g, "AllowRaw")
		if err != nil {
			return fmt.Errorf("allow: loading matchers: %w", err)
		}
		if err := g.allow.FromInterface(mods); err != nil {
			return fmt.Errorf("allow: %w", err)
		}
	}

	if err := metrics.Register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	g.allowed = metrics.EarlyDataRequests.WithLabelValues("allowed")
	g.rejected = metrics.EarlyDataRequests.WithLabelValues("rejected")
	g.status = &statusCounter{ctx: ctx}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Fast path, taken by every request that is not early data: the
	// handshake with the peer has completed (or there is no TLS) and no
	// Early-Data header is present. Header keys are canonical here: every
	// HTTP version's request parser canonicalizes them.
	if (r.TLS == nil || r.TLS.HandshakeComplete) && r.Header[headerName] == nil {
		return next.ServeHTTP(w, r)
	}
	return g.serveCandidate(w, r, next)
}

// serveCandidate handles a request that is in early data or carries an
// Early-Data header.
func (g *Guard) serveCandidate(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	inEarlyData := r.TLS != nil && !r.TLS.HandshakeComplete
	_, hasHeader := r.Header[headerName]
	var trusted bool
	if hasHeader {
		// caddyhttp computes this per request from the immediate peer's
		// address and the server's trusted_proxies. In QUIC early data
		// that address is not validated yet and could be spoofed, but
		// there trust cannot matter: a request in early data is early
		// whoever sent it, and keeping a spoofed peer's header only
		// repeats what Caddy's reverse proxy would add anyway.
		trusted, _ = caddyhttp.GetVar(r.Context(), caddyhttp.TrustedProxyVarKey).(bool)
	}

	early, strip := classify(inEarlyData, hasHeader, trusted)
	if strip {
		r.Header.Del(headerName)
	}
	if !early {
		return next.ServeHTTP(w, r)
	}
	caddyhttp.SetVar(r.Context(), varKey, true)

	safe := g.isSafeMethod(r.Method)
	refused := g.matches(g.refuse, r, "refuse", true)
	var allowed bool
	if !refused && !safe {
		allowed = g.matches(g.allow, r, "allow", false)
	}

	if admit(safe, refused, allowed) {
		g.allowed.Inc()
		g.status.count(true)
		return next.ServeHTTP(w, r)
	}
	g.rejected.Inc()
	g.status.count(false)
	if c := g.logger.Check(zapcore.DebugLevel, "refused request received as early data"); c != nil {
		c.Write(
			zap.String("method", r.Method),
			zap.String("uri", r.RequestURI),
			zap.Bool("in_early_data", inEarlyData),
			zap.Bool("early_data_header", hasHeader),
			zap.Bool("refuse_matched", refused),
		)
	}
	return tooEarly(w)
}

// matches evaluates matcher sets on an early request. A matcher error counts
// as onError (true for refuse, false for allow): either way the request is
// refused, and the client's retry after the handshake never reaches the
// matchers.
func (g *Guard) matches(sets caddyhttp.MatcherSets, r *http.Request, option string, onError bool) bool {
	if len(sets) == 0 {
		return false
	}
	ok, err := sets.AnyMatchWithError(r)
	if err != nil {
		if c := g.logger.Check(zapcore.ErrorLevel, "evaluating early-data matchers"); c != nil {
			c.Write(zap.String("option", option), zap.Error(err))
		}
		return onError
	}
	return ok
}

func (g *Guard) isSafeMethod(method string) bool {
	for _, m := range g.safeMethods {
		if m == method {
			return true
		}
	}
	return false
}

// tooEarly writes the 425 response. The request body is deliberately not
// read: the server discards it or, over HTTP/3, stops the stream's read side.
// A failure to write the short body means the client went away; there is
// nothing left to do for it, so it is not reported as a handler error.
func tooEarly(w http.ResponseWriter) error {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(tooEarlyBody)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusTooEarly)
	_, _ = io.WriteString(w, tooEarlyBody)
	return nil
}

const tooEarlyBody = "425 Too Early: retry the request after the TLS handshake has completed\n"

// Interface guards
var (
	_ caddy.Provisioner           = (*Guard)(nil)
	_ caddyhttp.MiddlewareHandler = (*Guard)(nil)
)
