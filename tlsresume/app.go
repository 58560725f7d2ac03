package tlsresume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
	"github.com/tlsresume/caddy-tlsresume/storage"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

func init() {
	caddy.RegisterModule(App{})
}

// Defaults follow the usual guidance for ticket keys: tickets accepted for
// tens of minutes (limits linkability), keys rotated twice a day.
const (
	defaultRotationInterval = 12 * time.Hour
	defaultTicketLifetime   = 30 * time.Minute
	defaultRingName         = "default"
	maxPollInterval         = time.Minute
	maxClockSkew            = time.Minute
	// maxTicketLifetime is Go's own limit: it will not resume older sessions.
	maxTicketLifetime   = 7 * 24 * time.Hour
	maxRotationInterval = 7 * 24 * time.Hour
	maxConfiguredPoll   = time.Hour
	maxConfiguredSkew   = time.Hour
)

// App is the tls_resume app: it takes over TLS session tickets for the
// connection policies of the selected HTTP servers, sealing them with a
// ticket-key ring that every node sharing the storage uses and rotates
// together, and binding each ticket to the policy's client-authentication
// realm (and, by default, to the SNI) so that mutual-TLS sessions can resume
// safely. Stock Caddy turns tickets off on every policy with client
// authentication; with this app those sessions resume, the policy's client
// certificate verifiers run again on every resumed handshake, and revoked
// certificates are refused.
type App struct {
	// The key-encryption key (KEK) that seals the ring in storage: 32
	// random bytes in standard base64, as printed by `caddy tls-resume
	// keygen`. Placeholders such as `{env.TLS_RESUME_KEK}` or
	// `{file./etc/caddy/kek}` are resolved. Every node of a fleet needs the
	// same KEK. Default: a KEK generated once into Caddy's data directory
	// (mode 0600), which suits a single node only. Only a missing kek
	// means that: an empty value, literal or from a placeholder that
	// resolves to nothing, is an error.
	KEK *string `json:"kek,omitempty"`

	// Older KEKs that may still open the ring, for rolling a KEK over
	// without losing resumption: the ring is re-sealed under `kek` as soon
	// as a node opens it with one of these. See the runbook.
	KEKPrevious []string `json:"kek_previous,omitempty"`

	// How long each ticket key seals new tickets before the next one takes
	// over; at most 7 days, so that a leaked key exposes a bounded
	// window of sessions. Default: 12h.
	RotationInterval caddy.Duration `json:"rotation_interval,omitempty"`

	// How long a session may resume after the client's last full
	// handshake, that is after it last proved possession of its
	// certificate's key. Resuming does not extend it: tickets issued on
	// resumed connections keep the time of the full handshake, on every
	// node and through the session store. Go and clients would keep
	// tickets for 7 days; shorter lifetimes limit how long a client can
	// be linked across connections. From 1s to 7 days. Default: 30m.
	TicketLifetime caddy.Duration `json:"ticket_lifetime,omitempty"`

	// How often each node re-reads the ring from storage; at most 1h.
	// Default: a tenth of the rotation interval, at most 1m.
	PollInterval caddy.Duration `json:"poll_interval,omitempty"`

	// The largest clock difference tolerated between nodes; at most 1h.
	// Keys are published at least two poll intervals plus this before
	// they seal. Default: a tenth of the rotation interval, at most 1m.
	MaxClockSkew caddy.Duration `json:"max_clock_skew,omitempty"`

	// Which session tickets may carry TLS early data (0-RTT, which
	// Caddy's HTTP/3 listener accepts). Early data can be replayed by
	// anyone who captured it, so by default (`once`) only tickets that a
	// session store makes single-use carry it: each stored session gets
	// 0-RTT at most once across the store (a node for `memory`, the
	// fleet for `redis`), and stateless tickets get none. `replayable`
	// lets stateless tickets carry 0-RTT too: then one ticket can be
	// replayed as early data any number of times until it expires, so
	// every request a client may send in 0-RTT must be safe to repeat
	// (see early_data_guard). `off` gives no ticket 0-RTT.
	EarlyData string `json:"early_data,omitempty"`

	// Names of the HTTP servers (keys of the http app's `servers`) whose
	// TLS connection policies this app manages; each must serve TLS.
	// Default: every server that serves TLS (not, for example, Caddy's
	// HTTP-to-HTTPS redirect server).
	Servers []string `json:"servers,omitempty"`

	// Resumption policies of particular host names (SNI), overriding
	// ticket_lifetime for them or turning resumption off: for example a
	// shorter lifetime for payments and admin sites. Each host name may
	// appear in one site policy only; hosts in none get the app's
	// settings.
	Sites []SitePolicy `json:"sites,omitempty"`

	// Accept a ticket on any host name served by the same connection
	// policy. By default a ticket is bound to the SNI it was issued for.
	ResumeAcrossHosts bool `json:"resume_across_hosts,omitempty"`

	// Name of the ring in storage; nodes with the same name (and storage
	// and KEK) share it. Default: `default`.
	RingName string `json:"ring_name,omitempty"`

	// Storage module holding the ring. Default: Caddy's configured storage.
	StorageRaw json.RawMessage `json:"storage,omitempty" caddy:"namespace=caddy.storage inline_key=module"`

	// Session store module (`memory` or `redis`) for stateful resumption:
	// clients then hold only a random handle, and the session, sealed
	// with the ring's current key, is kept in the store for the ticket
	// lifetime, where it can be revoked or used once. 0-RTT is granted to
	// a session at most once across the store. Default: none (stateless
	// tickets).
	SessionStoreRaw json.RawMessage `json:"session_store,omitempty" caddy:"namespace=tls_resume.session_stores inline_key=module"`

	// How handshakes use the session store: their budget per store call,
	// the fallback without the store, single use, and the circuit
	// breaker. Requires `session_store`. Default: every field's default.
	SessionStorePolicy *SessionStorePolicy `json:"session_store_policy,omitempty"`

	sessions  *sessions
	earlyData earlyDataMode
	sites     *siteRules
	storage   certmagic.Storage
	// localDir holds the node-local copy of the ring; Caddy's data
	// directory unless a test sets it.
	localDir string
	keks     []*keyring.KEK
	sched    keyring.Schedule
	poll     time.Duration
	rings    *keyring.Holder
	bindings []*policyBinding
	early    *earlyDataCounts
	sync     *keyring.Sync
	logger   *zap.Logger
	cancel   context.CancelFunc
	done     chan struct{}
}

// CaddyModule returns the Caddy module information.
func (App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls_resume",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision validates the configuration and installs the ticket hooks on
// the selected connection policies. Hooks are installed here, not in Start:
// apps start in random order, and the http app may already be handshaking
// when ours starts. Until the ring is loaded the hooks issue tickets that
// never open, so clients simply get full handshakes.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	refusalLog.logger.Store(a.logger)
	a.rings = new(keyring.Holder)
	a.early = new(earlyDataCounts)
	if err := metrics.Register(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %v", err)
	}
	if err := a.applyDefaults(); err != nil {
		return err
	}

	if a.KEK != nil {
		if *a.KEK == "" {
			return errors.New(`kek: empty value; give the base64 key-encryption key or a placeholder such as {env.TLS_RESUME_KEK}, or remove the option to use a node-local key (single node only)`)
		}
		kek, err := keyring.ParseKEK("kek", *a.KEK)
		if err != nil {
			return err
		}
		a.keks = append(a.keks, kek)
	} else if len(a.KEKPrevious) > 0 {
		return errors.New("kek_previous requires kek: the current key-encryption key must be configured explicitly")
	}
	for i, prev := range a.KEKPrevious {
		kek, err := keyring.ParseKEK(fmt.Sprintf("kek_previous[%d]", i), prev)
		if err != nil {
			return err
		}
		a.keks = append(a.keks, kek)
	}

	if a.StorageRaw != nil {
		mod, err := ctx.LoadModule(a, "StorageRaw")
		if err != nil {
			return fmt.Errorf("loading storage module: %v", err)
		}
		st, err := mod.(caddy.StorageConverter).CertMagicStorage()
		if err != nil {
			return fmt.Errorf("creating storage value: %v", err)
		}
		a.storage = st
	} else {
		a.storage = ctx.Storage()
	}

	if a.SessionStoreRaw != nil {
		var policy SessionStorePolicy
		if a.SessionStorePolicy != nil {
			policy = *a.SessionStorePolicy
		}
		policy, err := policy.withDefaults()
		if err != nil {
			return fmt.Errorf("session_store_policy: %v", err)
		}
		mod, err := ctx.LoadModule(a, "SessionStoreRaw")
		if err != nil {
			return fmt.Errorf("session_store: %v", err)
		}
		store, ok := mod.(storage.SessionStore)
		if !ok {
			return fmt.Errorf("session_store: module %T is not a session store", mod)
		}
		// Caddy closes the store (CleanerUpper) with this config.
		a.sessions = newSessions(store, policy, a.sched.Lifetime, a.logger.Named("session_store"))
	} else if a.SessionStorePolicy != nil {
		return errors.New("session_store_policy: there is no session_store for it to apply to")
	}

	if err := a.bindServers(ctx); err != nil {
		return err
	}
	return nil
}

func (a *App) applyDefaults() error {
	interval := time.Duration(a.RotationInterval)
	if interval == 0 {
		interval = defaultRotationInterval
	}
	lifetime := time.Duration(a.TicketLifetime)
	if lifetime == 0 {
		lifetime = defaultTicketLifetime
	}
	switch {
	case interval < 0:
		return fmt.Errorf("rotation_interval: must be positive, got %s", interval)
	case interval > maxRotationInterval:
		return fmt.Errorf("rotation_interval: %s exceeds 7 days: one ticket key would protect every session of that period, and a leaked key would expose them all", interval)
	case lifetime < 0:
		return fmt.Errorf("ticket_lifetime: must be positive, got %s", lifetime)
	case lifetime > maxTicketLifetime:
		return fmt.Errorf("ticket_lifetime: %s exceeds the 7-day limit of TLS session tickets", lifetime)
	case lifetime < time.Second:
		return fmt.Errorf("ticket_lifetime: %s is below the one-second resolution of tickets", lifetime)
	}
	a.poll = time.Duration(a.PollInterval)
	if a.poll == 0 {
		a.poll = min(interval/10, maxPollInterval)
	} else if a.poll < 0 {
		return fmt.Errorf("poll_interval: must be positive, got %s", a.poll)
	} else if a.poll > maxConfiguredPoll {
		return fmt.Errorf("poll_interval: %s exceeds 1h: a node would learn rotations and revocations that late", a.poll)
	}
	skew := time.Duration(a.MaxClockSkew)
	if skew == 0 {
		skew = min(interval/10, maxClockSkew)
	} else if skew < 0 {
		return fmt.Errorf("max_clock_skew: must be positive, got %s", skew)
	} else if skew > maxConfiguredSkew {
		return fmt.Errorf("max_clock_skew: %s exceeds 1h: synchronise the nodes' clocks (NTP) instead", skew)
	}
	mode, err := parseEarlyDataMode(a.EarlyData)
	if err != nil {
		return err
	}
	a.earlyData = mode
	if a.sites, err = newSiteRules(a.Sites, lifetime); err != nil {
		return err
	}
	a.sched = keyring.Schedule{Interval: interval, Lifetime: lifetime, Lead: 2*a.poll + skew}
	if err := a.sched.Validate(); err != nil {
		return fmt.Errorf("rotation_interval %s, poll_interval %s, max_clock_skew %s: %v", interval, a.poll, skew, err)
	}
	if a.RingName == "" {
		a.RingName = defaultRingName
	}
	return nil
}

// bindServers installs the hooks on every TLS connection policy of the
// selected HTTP servers.
func (a *App) bindServers(ctx caddy.Context) error {
	httpAppIface, err := ctx.AppIfConfigured("http")
	if errors.Is(err, caddy.ErrNotConfigured) {
		if len(a.Servers) > 0 {
			return fmt.Errorf("servers: %v named, but no http app is configured", a.Servers)
		}
		a.logger.Warn("no http app configured; tls_resume has no TLS connection policies to manage")
		return nil
	}
	if err != nil {
		return fmt.Errorf("getting http app: %v", err)
	}
	httpApp := httpAppIface.(*caddyhttp.App)

	if tlsAppIface, err := ctx.AppIfConfigured("tls"); err == nil {
		if st := tlsAppIface.(*caddytls.TLS).SessionTickets; st != nil && st.Disabled {
			return errors.New("the tls app has session_tickets disabled, which contradicts tls_resume: remove one of them")
		}
	}

	names := a.Servers
	if len(names) == 0 {
		for name, srv := range httpApp.Servers {
			if servesTLS(srv) {
				names = append(names, name)
			}
		}
		sort.Strings(names)
	} else {
		for _, name := range names {
			srv, ok := httpApp.Servers[name]
			if !ok {
				known := make([]string, 0, len(httpApp.Servers))
				for k := range httpApp.Servers {
					known = append(known, k)
				}
				slices.Sort(known)
				return fmt.Errorf("servers: no HTTP server named %q (servers: %v)", name, known)
			}
			if !servesTLS(srv) {
				return fmt.Errorf("servers: HTTP server %q serves no TLS (listening on %v): it has no session tickets to manage", name, srv.Listen)
			}
		}
	}

	lifetime := a.sched.Lifetime
	for _, name := range names {
		srv := httpApp.Servers[name]
		for _, pol := range srv.TLSConnPolicies {
			if pol == nil || pol.TLSConfig == nil || pol.Drop {
				continue
			}
			b := bindPolicy(pol, name, a.rings, bindOptions{
				lifetime:    lifetime,
				acrossHosts: a.ResumeAcrossHosts,
				earlyData:   a.earlyData,
				sites:       a.sites,
			})
			b.sessions = a.sessions
			a.bindings = append(a.bindings, b)
		}
	}
	a.logger.Info("managing TLS session tickets",
		zap.Strings("servers", names),
		zap.Int("connection_policies", len(a.bindings)),
		zap.Duration("rotation_interval", a.sched.Interval),
		zap.Duration("ticket_lifetime", a.sched.Lifetime),
		zap.Bool("resume_across_hosts", a.ResumeAcrossHosts),
		zap.String("early_data", earlyDataNames[a.earlyData]),
		zap.Bool("session_store", a.sessions != nil))
	return nil
}

// servesTLS reports whether an HTTP server has TLS listeners: Caddy gives
// every such server connection policies (automatic HTTPS included), and
// none to plain-HTTP servers such as the HTTP-to-HTTPS redirect server.
func servesTLS(srv *caddyhttp.Server) bool {
	for _, pol := range srv.TLSConnPolicies {
		if pol != nil && pol.TLSConfig != nil && !pol.Drop {
			return true
		}
	}
	return false
}

// Start loads the ring (bounded, so an unreachable storage cannot stall
// Caddy's start) and starts keeping it in step.
func (a *App) Start() error {
	if len(a.keks) == 0 {
		path := keyring.DefaultKEKPath()
		kek, created, err := keyring.LoadOrCreateLocalKEK(path)
		if err != nil {
			return fmt.Errorf("kek: no kek configured and the node-local one at %s is unusable: %v", path, err)
		}
		if created {
			a.logger.Warn("generated a node-local key-encryption key; set the kek option to share the ring across a fleet",
				zap.String("path", path))
		}
		a.keks = []*keyring.KEK{kek}
	}
	localDir := a.localDir
	if localDir == "" {
		localDir = caddy.AppDataDir()
	}
	a.sync = keyring.NewSync(keyring.SyncConfig{
		Store:    keyring.Store{Storage: a.storage, Name: a.RingName},
		KEKs:     a.keks,
		Schedule: a.sched,
		Poll:     a.poll,
		Holder:   a.rings,
		LocalDir: localDir,
		Logger:   a.logger,
	})
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	// One synchronous attempt so that a healthy node resumes from its first
	// handshakes; failures are logged and retried in the background.
	first, firstCancel := context.WithTimeout(ctx, 5*time.Second)
	_ = a.sync.Step(first)
	firstCancel()
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		a.sync.Run(ctx)
	}()
	running.Store(a)
	return nil
}

// Stop ends the ring synchroniser and withdraws the app from the admin API.
func (a *App) Stop() error {
	// A newer config's app may already be the running one.
	running.CompareAndSwap(a, nil)
	if a.cancel != nil {
		a.cancel()
		<-a.done
	}
	return nil
}

// Cleanup releases the ring's key material held by this config.
func (a *App) Cleanup() error {
	if a.sync != nil {
		a.sync.Close()
	}
	return nil
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
