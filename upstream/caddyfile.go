package upstream

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tlsresume/caddy-tlsresume/internal/caddyfilex"
)

// UnmarshalCaddyfile sets up the transport from Caddyfile tokens. It takes
// every subdirective of Caddy's `transport http` (parsed by Caddy's own
// transport, with its errors) plus the session settings:
//
//	transport http_resume {
//	    <any transport http subdirective>
//	    session_reuse      [on|off]
//	    session_cache_size <count>
//	    session_lifetime   <duration>
//	    full_handshake_every <duration>
//	}
func (t *Transport) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume transport name
	name := d.Token()
	if d.NextArg() {
		return d.Errf("transport %s takes no arguments, got '%s'", name.Text, d.Val())
	}

	// Walk the block once: our subdirectives are parsed here, every other
	// segment is kept, with its original tokens (file and line included),
	// for Caddy's parser. The block's braces are kept around them.
	inherited := []caddyfile.Token{name}
	opened := false
	seen := caddyfilex.NewOptionSet("%s already specified")
	for d.NextBlock(0) {
		if !opened {
			opened = true
			d.Prev()
			inherited = append(inherited, d.Token()) // "{"
			d.Next()
		}
		seg := d.NextSegment()
		if !isSessionOption(seg[0].Text) {
			inherited = append(inherited, seg...)
			continue
		}
		sd := caddyfile.NewDispenser(seg)
		sd.Next()
		if err := seen.Once(sd, seg[0].Text); err != nil {
			return err
		}
		sd.Reset()
		if err := t.unmarshalSessionOption(sd); err != nil {
			return err
		}
	}
	if opened && d.Val() == "}" {
		inherited = append(inherited, d.Token())
	}
	return t.HTTPTransport.UnmarshalCaddyfile(caddyfile.NewDispenser(inherited))
}

func isSessionOption(name string) bool {
	switch name {
	case "session_reuse", "session_cache_size", "session_lifetime", "full_handshake_every":
		return true
	}
	return false
}

// unmarshalSessionOption parses one session subdirective; d holds exactly
// its segment.
func (t *Transport) unmarshalSessionOption(d *caddyfile.Dispenser) error {
	d.Next()
	opt := d.Val()
	args := d.RemainingArgs()
	if d.NextBlock(0) {
		return d.Errf("%s takes no block", opt)
	}
	switch opt {
	case "session_reuse":
		on := true
		switch {
		case len(args) == 0:
		case len(args) == 1 && args[0] == "on":
		case len(args) == 1 && args[0] == "off":
			on = false
		default:
			return d.Errf("session_reuse: expected 'on' or 'off', got %q", args)
		}
		t.SessionReuse = &on

	case "session_cache_size":
		if len(args) != 1 {
			return d.Errf("session_cache_size: expected one number of sessions, got %d arguments", len(args))
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 {
			return d.Errf("session_cache_size: invalid number of sessions '%s' (must be a positive integer; use 'session_reuse off' to disable)", args[0])
		}
		t.SessionCacheSize = n

	case "session_lifetime":
		if len(args) != 1 {
			return d.Errf("session_lifetime: expected one duration, got %d arguments", len(args))
		}
		dur, err := caddy.ParseDuration(args[0])
		if err != nil {
			return d.Errf("session_lifetime: invalid duration '%s': %v", args[0], err)
		}
		if dur <= 0 || dur > maxSessionLifetime {
			return d.Errf("session_lifetime: '%s' out of range (0, %s]", args[0], maxSessionLifetime)
		}
		t.SessionLifetime = caddy.Duration(dur)

	case "full_handshake_every":
		if len(args) != 1 {
			return d.Errf("full_handshake_every: expected one duration, got %d arguments", len(args))
		}
		dur, err := caddy.ParseDuration(args[0])
		if err != nil {
			return d.Errf("full_handshake_every: invalid duration '%s': %v", args[0], err)
		}
		if dur < minFullHandshakeEvery {
			return d.Errf("full_handshake_every: '%s' is shorter than the %s minimum (nearly every connection would be a full handshake; use 'session_reuse off' for that)", args[0], minFullHandshakeEvery)
		}
		t.FullHandshakeEvery = caddy.Duration(dur)
	}
	return nil
}
