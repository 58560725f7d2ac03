package tlsresume

import (
	"fmt"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tlsresume/caddy-tlsresume/internal/caddyfilex"
)

// Values of SessionStorePolicy.Fallback.
const (
	fallbackFull      = "full"
	fallbackStateless = "stateless"
)

// Defaults of SessionStorePolicy.
const (
	defaultStoreBudget      = 50 * time.Millisecond
	defaultBreakerThreshold = 5
	defaultBreakerCooldown  = 5 * time.Second

	maxStoreBudget      = 5 * time.Second
	maxBreakerCooldown  = 10 * time.Minute
	maxBreakerThreshold = 10000
)

// SessionStorePolicy is how handshakes use the session store: how long
// they wait for it, what they do without it, and when they stop trying.
// It applies to whichever store module `session_store` names.
type SessionStorePolicy struct {
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

// withDefaults returns o with every unset field at its default, or an
// error naming the first invalid field and its value.
func (o SessionStorePolicy) withDefaults() (SessionStorePolicy, error) {
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
		o.Fallback = fallbackFull
	case fallbackFull, fallbackStateless:
	default:
		return o, fmt.Errorf("fallback: must be %q or %q, got %q", fallbackFull, fallbackStateless, o.Fallback)
	}
	if o.Budget == 0 {
		o.Budget = caddy.Duration(defaultStoreBudget)
	}
	if o.BreakerThreshold == 0 {
		o.BreakerThreshold = defaultBreakerThreshold
	}
	if o.BreakerCooldown == 0 {
		o.BreakerCooldown = caddy.Duration(defaultBreakerCooldown)
	}
	return o, nil
}

// storePolicyOptions are the SessionStorePolicy subdirectives of a
// session_store block.
var storePolicyOptions = []string{"budget", "fallback", "single_use", "breaker_threshold", "breaker_cooldown"}

// unmarshalSessionStore parses `session_store <module> { ... }`; the
// dispenser is on the module name. The block mixes the store module's
// options with the app's SessionStorePolicy (the syntax predates the
// split): lines starting with a policy option are parsed here, every other
// line, with its nested block, goes to the module's own parser, so that
// errors keep their file and line. It returns the module's JSON and the
// policy (nil when the block sets none).
func unmarshalSessionStore(d *caddyfile.Dispenser) (raw []byte, policy *SessionStorePolicy, err error) {
	name := d.Val()
	mod, policy, err := splitSessionStore(name, caddyfile.NewDispenser(d.NextSegment()))
	if err != nil {
		return nil, nil, d.Errf("tls_resume: session_store %q: %v", name, err)
	}
	return caddyconfig.JSONModuleObject(mod, "module", name, nil), policy, nil
}

// splitSessionStore parses the policy options of the session_store
// segment seg and hands the rest to the module's parser.
func splitSessionStore(name string, seg *caddyfile.Dispenser) (caddyfile.Unmarshaler, *SessionStorePolicy, error) {
	seg.Next() // module name
	id := "tls_resume.session_stores." + name
	if _, err := caddy.GetModule(id); err != nil {
		// Before the policy options: a store name the build lacks is the
		// first thing to fix.
		return nil, nil, seg.Errf("getting module named '%s': %v", id, err)
	}
	module := []caddyfile.Token{seg.Token()}
	for seg.NextArg() {
		module = append(module, seg.Token())
	}
	var policy *SessionStorePolicy
	seen := caddyfilex.NewOptionSet("session_store %s: duplicate option %q", name)
	var open caddyfile.Token
	var body []caddyfile.Token
	for seg.NextBlock(0) {
		if open.Text == "" {
			seg.Prev() // NextBlock consumed the opening brace
			open = seg.Token()
			seg.Next()
		}
		opt := seg.Val()
		if !slices.Contains(storePolicyOptions, opt) {
			body = append(body, seg.NextSegment()...)
			continue
		}
		if err := seen.Once(seg, opt); err != nil {
			return nil, nil, err
		}
		if policy == nil {
			policy = new(SessionStorePolicy)
		}
		if err := policy.unmarshalOption(seg, name); err != nil {
			return nil, nil, err
		}
	}
	if open.Text != "" {
		// seg is on the block's closing brace.
		module = append(module, open)
		module = append(module, body...)
		module = append(module, seg.Token())
	}
	md := caddyfile.NewDispenser(module)
	md.Next()
	mod, err := caddyfile.UnmarshalModule(md, id)
	return mod, policy, err
}

// unmarshalOption parses one policy subdirective of the session_store
// block of store; the dispenser is on the option's name.
func (p *SessionStorePolicy) unmarshalOption(d *caddyfile.Dispenser, store string) error {
	opt := d.Val()
	switch opt {
	case "budget", "breaker_cooldown":
		dur, err := caddyfilex.PositiveDuration(d, "session_store "+store, opt)
		if err != nil {
			return err
		}
		if opt == "budget" {
			p.Budget = caddy.Duration(dur)
		} else {
			p.BreakerCooldown = caddy.Duration(dur)
		}
	case "breaker_threshold":
		n, err := caddyfilex.PositiveInt(d, "session_store "+store, opt)
		if err != nil {
			return err
		}
		p.BreakerThreshold = n
	case "fallback":
		var val string
		if !d.AllArgs(&val) {
			return d.Errf("session_store %s: fallback takes exactly one value (%s or %s)", store, fallbackFull, fallbackStateless)
		}
		if val != fallbackFull && val != fallbackStateless {
			return d.Errf("session_store %s: fallback: must be %s or %s, got %q", store, fallbackFull, fallbackStateless, val)
		}
		p.Fallback = val
	case "single_use":
		if d.NextArg() {
			return d.Errf("session_store %s: single_use takes no value, got %q", store, d.Val())
		}
		p.SingleUse = true
	}
	return nil
}
