package storage

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tlsresume/caddy-tlsresume/internal/caddyfilex"
)

// SessionStore keeps server-side TLS sessions: the tls_resume app hands the
// client only an opaque random handle and stores the session state, sealed
// with the ring's current key, under it. A store never sees a resumption
// secret in the clear.
//
// Every method must honour ctx (its deadline is the handshake's budget) and
// be safe for concurrent use.
type SessionStore interface {
	// Put stores sealed under handle for ttl, indexed under leaf (the
	// SHA-256 of the client certificate; the zero value when there is
	// none) so that RevokeLeaf can find it.
	Put(ctx context.Context, handle, sealed []byte, leaf [32]byte, ttl time.Duration) error
	// Get returns the sealed session stored under handle, or ErrMiss.
	// The caller must not modify the returned bytes (stores may share
	// them with an in-memory cache).
	Get(ctx context.Context, handle []byte) ([]byte, error)
	// Take is Get that atomically deletes the session: a single-use
	// session resumes at most once.
	Take(ctx context.Context, handle []byte) ([]byte, error)
	// Delete removes the session stored under handle, if any.
	Delete(ctx context.Context, handle []byte) error
	// RevokeLeaf deletes every session indexed under the client
	// certificate fingerprint leaf and reports how many it deleted.
	RevokeLeaf(ctx context.Context, leaf [32]byte) (int, error)
	// InvalidateAll deletes every session of this store.
	InvalidateAll(ctx context.Context) error
	// ClaimEarlyData records that the session under handle used 0-RTT
	// and reports whether this was the first claim. It is the anti-replay
	// check: across the store's scope (a node for memory, the cluster for
	// Redis) only one resumption of a session gets early data. A missing
	// session is never first.
	ClaimEarlyData(ctx context.Context, handle []byte) (first bool, err error)
	// Close releases the store's connections.
	Close() error
}

// ErrMiss means no session is stored under the handle (never stored,
// expired, taken, revoked or invalidated).
var ErrMiss = errors.New("session store: no such session")

// SessionStoreModule is what a module in the tls_resume.session_stores
// namespace provides: a provisioned store and its handshake-path options.
type SessionStoreModule interface {
	caddy.Module
	SessionStore
	Options() StoreOptions
}

// Fallback values of StoreOptions.Fallback.
const (
	FallbackFull      = "full"
	FallbackStateless = "stateless"
)

// Defaults of StoreOptions.
const (
	DefaultStoreBudget      = 50 * time.Millisecond
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 5 * time.Second

	maxStoreBudget      = 5 * time.Second
	maxBreakerCooldown  = 10 * time.Minute
	maxBreakerThreshold = 10000
)

// StoreOptions are how the tls_resume app uses a session store on the
// handshake path. They are shared by every session store module.
type StoreOptions struct {
	// The longest a handshake waits for one store operation; beyond it
	// the handshake goes on without the store (see `fallback`). At most
	// 5s. Default: 50ms.
	Budget caddy.Duration `json:"budget,omitempty"`

	// What new connections get while the store fails or its circuit
	// breaker is open: `full` (default) issues tickets that never resume,
	// so clients do full handshakes; `stateless` issues ring-sealed
	// stateless tickets, which also stay accepted once the store is back.
	// With `full`, stateless tickets are not accepted at all.
	Fallback string `json:"fallback,omitempty"`

	// Delete each session when it resumes, so that a ticket opens at most
	// once (forward secrecy for the resumed session; every resumption
	// gets a fresh ticket).
	SingleUse bool `json:"single_use,omitempty"`

	// Consecutive failed store operations that open the circuit breaker:
	// the store is then skipped for `breaker_cooldown`, after which one
	// probe is let through. At most 10000. Default: 5.
	BreakerThreshold int `json:"breaker_threshold,omitempty"`

	// How long an open circuit breaker skips the store; at most 10m.
	// Default: 5s.
	BreakerCooldown caddy.Duration `json:"breaker_cooldown,omitempty"`
}

// WithDefaults returns o with every unset field at its default, or an
// error naming the first invalid field.
func (o StoreOptions) WithDefaults() (StoreOptions, error) {
	switch {
	case o.Budget < 0:
		return o, fmt.Errorf("budget: must be positive, got %s", time.Duration(o.Budget))
	case o.BreakerThreshold < 0:
		return o, fmt.Errorf("breaker_threshold: must be positive, got %d", o.BreakerThreshold)
	case o.BreakerCooldown < 0:
		return o, fmt.Errorf("breaker_cooldown: must be positive, got %s", time.Duration(o.BreakerCooldown))
	case time.Duration(o.Budget) > maxStoreBudget:
		return o, fmt.Errorf("budget: %s exceeds %s: every resuming handshake may wait that long for the store", time.Duration(o.Budget), maxStoreBudget)
	case time.Duration(o.BreakerCooldown) > maxBreakerCooldown:
		return o, fmt.Errorf("breaker_cooldown: %s exceeds %s: resumption would stay off that long after the store is back", time.Duration(o.BreakerCooldown), maxBreakerCooldown)
	case o.BreakerThreshold > maxBreakerThreshold:
		return o, fmt.Errorf("breaker_threshold: %d exceeds %d: the breaker would never spare handshakes the budget's wait", o.BreakerThreshold, maxBreakerThreshold)
	}
	switch o.Fallback {
	case "":
		o.Fallback = FallbackFull
	case FallbackFull, FallbackStateless:
	default:
		return o, fmt.Errorf("fallback: must be %q or %q, got %q", FallbackFull, FallbackStateless, o.Fallback)
	}
	if o.Budget == 0 {
		o.Budget = caddy.Duration(DefaultStoreBudget)
	}
	if o.BreakerThreshold == 0 {
		o.BreakerThreshold = DefaultBreakerThreshold
	}
	if o.BreakerCooldown == 0 {
		o.BreakerCooldown = caddy.Duration(DefaultBreakerCooldown)
	}
	return o, nil
}

// unmarshalOption parses one StoreOptions subdirective of a session_store
// block; it reports false for a name that is not one of them.
func (o *StoreOptions) unmarshalOption(d *caddyfile.Dispenser, store string) (bool, error) {
	opt := d.Val()
	switch opt {
	case "budget", "breaker_cooldown":
		dur, err := caddyfilex.PositiveDuration(d, "session_store "+store, opt)
		if err != nil {
			return true, err
		}
		if opt == "budget" {
			o.Budget = caddy.Duration(dur)
		} else {
			o.BreakerCooldown = caddy.Duration(dur)
		}
	case "breaker_threshold":
		n, err := caddyfilex.PositiveInt(d, "session_store "+store, opt)
		if err != nil {
			return true, err
		}
		o.BreakerThreshold = n
	case "fallback":
		var val string
		if !d.AllArgs(&val) {
			return true, d.Errf("session_store %s: fallback takes exactly one value (%s or %s)", store, FallbackFull, FallbackStateless)
		}
		if val != FallbackFull && val != FallbackStateless {
			return true, d.Errf("session_store %s: fallback: must be %s or %s, got %q", store, FallbackFull, FallbackStateless, val)
		}
		o.Fallback = val
	case "single_use":
		if d.NextArg() {
			return true, d.Errf("session_store %s: single_use takes no value, got %q", store, d.Val())
		}
		o.SingleUse = true
	default:
		return false, nil
	}
	return true, nil
}
