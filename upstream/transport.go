package upstream

import (
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"github.com/quic-go/quic-go/http3"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

func init() {
	caddy.RegisterModule(Transport{})
}

// Defaults and limits of the session settings.
const (
	// defaultSessionCacheSize is the default number of upstream sessions
	// kept (one per server name and TLS identity).
	defaultSessionCacheSize = 1024

	// defaultSessionLifetime is how long a cached session is offered by
	// default, matching the tls_resume app's default ticket lifetime.
	defaultSessionLifetime = 30 * time.Minute

	// maxSessionLifetime is the longest session_lifetime accepted: TLS 1.3
	// never lets a ticket live longer (RFC 8446, Section 4.6.1).
	maxSessionLifetime = 7 * 24 * time.Hour
)

// Transport is Caddy's HTTP reverse-proxy transport with TLS session reuse
// towards upstreams. Every field of the `http` transport is accepted inline
// and means exactly what it means there: this module embeds and provisions
// Caddy's own transport, then installs a TLS client session cache on the
// TLS configuration it built, so new upstream connections resume earlier
// sessions (an abbreviated handshake, no certificate exchange) instead of
// paying a full handshake each time.
//
// A session is offered only to the server name it was established with
// (the upstream's host, or `tls.server_name`), and only under the same
// client certificate and trust settings. Upstreams reached under one server
// name that share session-ticket keys — for example several Caddy servers
// running the tls_resume app on one storage — resume each other's
// sessions. Upstreams under one server name that do not share ticket keys
// should get distinct server names, or they will keep replacing each
// other's sessions.
//
// Handshakes are counted in the metric
// `caddy_tls_resume_upstream_handshakes_total{resumed}`.
type Transport struct {
	reverseproxy.HTTPTransport

	// Whether TLS sessions are cached and offered to upstreams.
	// Set to false to turn session reuse off (handshakes are still
	// counted). Default: true.
	SessionReuse *bool `json:"session_reuse,omitempty"`

	// The maximum number of sessions kept, one per upstream server name
	// (and TLS identity); the least recently used session is evicted
	// beyond it. Transports with the same size share one cache, which also
	// survives config reloads. Default: 1024.
	SessionCacheSize int `json:"session_cache_size,omitempty"`

	// How long after it was received a session is still offered to an
	// upstream; older sessions cause a full handshake and are replaced.
	// An upstream may expire its tickets sooner. At most 168h.
	// Default: 30m.
	SessionLifetime caddy.Duration `json:"session_lifetime,omitempty"`

	// How often, at least, the transport makes a full, fully verified
	// handshake to each upstream (each server name and TLS identity) even
	// while it holds a session for it. A resumed handshake does not see
	// the upstream's certificate at all, so without this an upstream whose
	// certificate or trust configuration broke keeps answering resumed
	// connections until their sessions expire. When the last successful
	// full handshake to an upstream is older than this, its session is not
	// offered: the next connection does a full handshake with normal
	// certificate verification. If that handshake fails, the request fails
	// like any upstream TLS failure (so Caddy's passive health checks count
	// it, and active health checks through this transport see it), the
	// failure is logged once per failure streak and counted in
	// `caddy_tls_resume_upstream_handshake_failures_total`, and later
	// connections keep doing full handshakes until one succeeds.
	// At least 1s, and shorter than session_lifetime (sessions are dropped
	// that often anyway). Not supported with HTTP/3 upstreams. Default:
	// off (a session is resumed until session_lifetime or the upstream
	// ends it).
	FullHandshakeEvery caddy.Duration `json:"full_handshake_every,omitempty"`

	// h3 replaces the embedded transport's HTTP/3 round tripper when
	// `versions` is ["3"], so that it uses the same TLS configuration,
	// session cache included.
	h3 *http3.Transport

	// storeKey is the key of the shared session store acquired at
	// provision, released at cleanup; empty when none was acquired.
	storeKey string

	// health counts and logs failed upstream handshakes and, with
	// full_handshake_every, watches every request's handshakes; nil for
	// plain HTTP and HTTP/3 upstreams.
	health *handshakeHealth
}

// CaddyModule returns the Caddy module information.
func (Transport) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.transport.http_resume",
		New: func() caddy.Module { return new(Transport) },
	}
}

// Provision provisions the embedded Caddy HTTP transport, then installs the
// session cache and the handshake counter on the TLS client configuration
// it built. The session cache's size and lifetime are checked first: they
// size a store shared by every transport of the process.
func (t *Transport) Provision(ctx caddy.Context) error {
	if err := t.sessionDefaults(); err != nil {
		return err
	}
	if err := metrics.Register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %v", err)
	}

	// Read the trust settings now: provisioning clears the raw ca module.
	roots := trustConfig(t.TLS)

	if err := t.HTTPTransport.Provision(ctx); err != nil {
		return err
	}
	if t.TLS == nil {
		// Plain HTTP (or h2c) to the upstream: no TLS, nothing to resume.
		return nil
	}

	// Caddy leaves TLSClientConfig nil when the tls block sets nothing
	// that differs from the defaults; net/http then starts from an empty
	// config, which is what we install here.
	cfg := t.Transport.TLSClientConfig
	if cfg == nil {
		cfg = new(tls.Config)
		t.Transport.TLSClientConfig = cfg
	}
	countHandshakes(cfg)

	in := identityInput{
		Protocol:           "tcp",
		InsecureSkipVerify: cfg.InsecureSkipVerify,
		ClientAutomate:     t.TLS.ClientCertificateAutomate,
		Roots:              roots,
	}
	for _, c := range cfg.Certificates {
		in.ClientChains = append(in.ClientChains, c.Certificate)
	}

	var h3cfg *tls.Config
	if len(t.Versions) == 1 && t.Versions[0] == "3" {
		// Caddy's own HTTP/3 transport is unexported and builds its TLS
		// config anew (after the ca module was consumed), so we replace
		// it with one using the TLS config built above.
		h3cfg = cfg.Clone()
		h3cfg.NextProtos = nil // http3 sets its ALPN
		t.h3 = &http3.Transport{TLSClientConfig: h3cfg}
	}

	if t.SessionReuse != nil && !*t.SessionReuse {
		ctx.Logger().Info("upstream TLS session reuse disabled")
		if h3cfg == nil {
			t.health = newHandshakeHealth(cfg, nil, ctx.Logger(), false)
		}
		return nil
	}

	store, err := acquireStore(t.SessionCacheSize)
	if err != nil {
		return fmt.Errorf("session cache: %v", err)
	}
	t.storeKey = storeKey(t.SessionCacheSize)

	lifetime, fullEvery := time.Duration(t.SessionLifetime), time.Duration(t.FullHandshakeEvery)
	identity := identityDigest(in)
	cache := &sessionCache{store: store, identity: identity, lifetime: lifetime, fullEvery: fullEvery, now: time.Now, logger: ctx.Logger()}
	cfg.ClientSessionCache = cache
	if h3cfg != nil {
		in.Protocol = "quic"
		h3cfg.ClientSessionCache = &sessionCache{store: store, identity: identityDigest(in), lifetime: lifetime, now: time.Now, logger: ctx.Logger()}
	} else {
		t.health = newHandshakeHealth(cfg, cache, ctx.Logger(), fullEvery > 0)
	}

	if ce := ctx.Logger().Check(zap.DebugLevel, "upstream TLS session reuse enabled"); ce != nil {
		ce.Write(
			zap.Int("session_cache_size", t.SessionCacheSize),
			zap.Duration("session_lifetime", lifetime),
			zap.Duration("full_handshake_every", fullEvery),
			zap.String("identity", hex.EncodeToString([]byte(identity[:8]))),
		)
	}
	return nil
}

// sessionDefaults checks the session cache's size and lifetime and fills in
// their defaults.
func (t *Transport) sessionDefaults() error {
	if t.SessionCacheSize < 0 {
		return fmt.Errorf("session_cache_size: must be a positive number of sessions, got %d", t.SessionCacheSize)
	}
	if t.SessionCacheSize == 0 {
		t.SessionCacheSize = defaultSessionCacheSize
	}
	if t.SessionLifetime < 0 {
		return fmt.Errorf("session_lifetime: must be a positive duration, got %s", time.Duration(t.SessionLifetime))
	}
	if time.Duration(t.SessionLifetime) > maxSessionLifetime {
		return fmt.Errorf("session_lifetime: %s exceeds the %s TLS allows for a session ticket", time.Duration(t.SessionLifetime), maxSessionLifetime)
	}
	if t.SessionLifetime == 0 {
		t.SessionLifetime = caddy.Duration(defaultSessionLifetime)
	}
	return nil
}

// Validate checks full_handshake_every against the other settings
// (session_lifetime has its default after Provision).
func (t *Transport) Validate() error {
	every := time.Duration(t.FullHandshakeEvery)
	switch {
	case every == 0:
		return nil
	case every < 0:
		return fmt.Errorf("full_handshake_every: must be a positive duration, got %s", every)
	case every < minFullHandshakeEvery:
		return fmt.Errorf("full_handshake_every: %s is shorter than the %s minimum: nearly every connection would be a full handshake (to turn resumption off, use session_reuse off)", every, minFullHandshakeEvery)
	case every >= time.Duration(t.SessionLifetime):
		return fmt.Errorf("full_handshake_every: %s is not shorter than session_lifetime (%s): sessions are already dropped at least that often, so it would have no effect", every, time.Duration(t.SessionLifetime))
	case t.SessionReuse != nil && !*t.SessionReuse:
		return fmt.Errorf("full_handshake_every: %s has no effect with session_reuse off (every handshake is full)", every)
	case t.TLS == nil:
		return fmt.Errorf("full_handshake_every: %s needs TLS to the upstream (an https:// upstream or a tls option)", every)
	case len(t.Versions) == 1 && t.Versions[0] == "3":
		return fmt.Errorf("full_handshake_every: %s is not supported with HTTP/3 upstreams (versions 3)", every)
	}
	return nil
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.h3 != nil {
		t.SetScheme(req)
		return t.h3.RoundTrip(req)
	}
	h := t.health
	if h == nil {
		return t.HTTPTransport.RoundTrip(req)
	}
	var w *handshakeWatch
	if h.schedule {
		req, w = h.watch(req)
	}
	resp, err := t.HTTPTransport.RoundTrip(req)
	if err != nil {
		h.roundTripFailed(req, w, err)
	}
	return resp, err
}

// Cleanup implements caddy.CleanerUpper: it closes idle upstream
// connections and releases the session cache.
func (t *Transport) Cleanup() error {
	err := t.HTTPTransport.Cleanup()
	if t.h3 != nil {
		t.h3.CloseIdleConnections()
	}
	if t.storeKey != "" {
		if rerr := releaseStore(t.storeKey); rerr != nil && err == nil {
			err = rerr
		}
		t.storeKey = ""
	}
	return err
}

// Interface guards: everything Caddy's HTTP transport implements, this
// transport implements too (most through embedding).
var (
	_ caddy.Module                                     = (*Transport)(nil)
	_ caddy.Provisioner                                = (*Transport)(nil)
	_ caddy.Validator                                  = (*Transport)(nil)
	_ caddy.CleanerUpper                               = (*Transport)(nil)
	_ caddyfile.Unmarshaler                            = (*Transport)(nil)
	_ http.RoundTripper                                = (*Transport)(nil)
	_ reverseproxy.TLSTransport                        = (*Transport)(nil)
	_ reverseproxy.H2CTransport                        = (*Transport)(nil)
	_ reverseproxy.HealthCheckSchemeOverriderTransport = (*Transport)(nil)
	_ reverseproxy.ProxyProtocolTransport              = (*Transport)(nil)
	_ reverseproxy.RequestHeaderOpsTransport           = (*Transport)(nil)
)
