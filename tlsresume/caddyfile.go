package tlsresume

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/tlsresume/caddy-tlsresume/internal/caddyfilex"
)

// UnmarshalCaddyfile sets up the app from the tls_resume global option.
// Syntax:
//
//	tls_resume {
//		kek                 <base64 key or placeholder>
//		kek_previous        <base64 key or placeholder...>
//		rotation_interval   <duration>
//		ticket_lifetime     <duration>
//		poll_interval       <duration>
//		max_clock_skew      <duration>
//		servers             <server names...>
//		resume_across_hosts
//		early_data          once|replayable|off
//		site                <hosts...> {
//			ticket_lifetime <duration>
//			resumption      on|off
//		}
//		ring_name           <name>
//		storage             <module> {
//			...
//		}
//		session_store       <memory|redis> {
//			budget            <duration>
//			fallback          full|stateless
//			single_use
//			breaker_threshold <n>
//			breaker_cooldown  <duration>
//			...
//		}
//	}
//
// A bare `tls_resume` (no block) enables the app with every default. In
// the session_store block, the five options shown set
// `session_store_policy`; the others are the store module's.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume option name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := caddyfilex.NewOptionSet("tls_resume: duplicate option %q").Repeatable("kek_previous", "servers", "site")
	for d.NextBlock(0) {
		opt := d.Val()
		if err := seen.Once(d, opt); err != nil {
			return err
		}
		switch opt {
		case "kek":
			var kek string
			if !d.AllArgs(&kek) {
				return d.Errf("tls_resume: kek takes exactly one value")
			}
			if kek == "" {
				// Also what an unset {$VAR} leaves: silently using a
				// node-local key instead would split a fleet.
				return d.Errf("tls_resume: kek: empty value; give the base64 key or a placeholder such as {env.TLS_RESUME_KEK}, or remove the option for a node-local key")
			}
			a.KEK = &kek
		case "early_data":
			if !d.AllArgs(&a.EarlyData) {
				return d.Errf("tls_resume: early_data takes exactly one value: %s, %s or %s", earlyDataNames[earlyDataOnce], earlyDataNames[earlyDataReplayable], earlyDataNames[earlyDataOff])
			}
			if _, err := parseEarlyDataMode(a.EarlyData); err != nil {
				return d.Errf("tls_resume: %v", err)
			}
		case "kek_previous":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("tls_resume: kek_previous needs at least one key")
			}
			a.KEKPrevious = append(a.KEKPrevious, args...)
		case "rotation_interval", "ticket_lifetime", "poll_interval", "max_clock_skew":
			dur, err := caddyfilex.PositiveDurationInto(d, "tls_resume", opt, map[string]*caddy.Duration{
				"rotation_interval": &a.RotationInterval, "ticket_lifetime": &a.TicketLifetime,
				"poll_interval": &a.PollInterval, "max_clock_skew": &a.MaxClockSkew,
			})
			if err != nil {
				return err
			}
			if opt == "rotation_interval" && dur > maxRotationInterval {
				// d.Val() is still the duration as written.
				return d.Errf("tls_resume: rotation_interval: %q exceeds 7 days: one ticket key would protect every session of that period, and a leaked key would expose them all", d.Val())
			}
		case "servers":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("tls_resume: servers needs at least one server name")
			}
			a.Servers = append(a.Servers, args...)
		case "resume_across_hosts":
			if d.NextArg() {
				return d.Errf("tls_resume: resume_across_hosts takes no value, got %q", d.Val())
			}
			a.ResumeAcrossHosts = true
		case "ring_name":
			if !d.AllArgs(&a.RingName) {
				return d.Errf("tls_resume: ring_name takes exactly one name")
			}
		case "site":
			sp, err := unmarshalSitePolicy(d)
			if err != nil {
				return err
			}
			a.Sites = append(a.Sites, sp)
		case "storage":
			if !d.NextArg() {
				return d.Errf("tls_resume: storage needs a module name")
			}
			name := d.Val()
			mod, err := caddyfile.UnmarshalModule(d, "caddy.storage."+name)
			if err != nil {
				return d.Errf("tls_resume: storage %q: %v", name, err)
			}
			if _, ok := mod.(caddy.StorageConverter); !ok {
				return d.Errf("tls_resume: storage module %q is not a storage module", name)
			}
			a.StorageRaw = caddyconfig.JSONModuleObject(mod, "module", name, nil)
		case "session_store":
			if !d.NextArg() {
				return d.Errf("tls_resume: session_store needs a module name (memory or redis)")
			}
			raw, policy, err := unmarshalSessionStore(d)
			if err != nil {
				return err
			}
			a.SessionStoreRaw, a.SessionStorePolicy = raw, policy
		default:
			return d.Errf("tls_resume: unknown option %q", opt)
		}
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*App)(nil)

// unmarshalSitePolicy parses `site <hosts...> { ... }`; the dispenser is on
// "site".
func unmarshalSitePolicy(d *caddyfile.Dispenser) (SitePolicy, error) {
	var sp SitePolicy
	sp.Hosts = d.RemainingArgs()
	if len(sp.Hosts) == 0 {
		return sp, d.Errf("tls_resume: site needs at least one host name")
	}
	seen := caddyfilex.NewOptionSet("tls_resume: site %v: duplicate option %q", sp.Hosts)
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		opt := d.Val()
		if err := seen.Once(d, opt); err != nil {
			return sp, err
		}
		switch opt {
		case "ticket_lifetime":
			var val string
			if !d.AllArgs(&val) {
				return sp, d.Errf("tls_resume: site %v: ticket_lifetime takes exactly one duration", sp.Hosts)
			}
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return sp, d.Errf("tls_resume: site %v: ticket_lifetime: invalid positive duration %q", sp.Hosts, val)
			}
			sp.TicketLifetime = caddy.Duration(dur)
		case "resumption":
			if !d.AllArgs(&sp.Resumption) || (sp.Resumption != resumptionOn && sp.Resumption != resumptionOff) {
				return sp, d.Errf("tls_resume: site %v: resumption takes %s or %s", sp.Hosts, resumptionOn, resumptionOff)
			}
		default:
			return sp, d.Errf("tls_resume: site %v: unknown option %q", sp.Hosts, opt)
		}
	}
	if sp.TicketLifetime == 0 && sp.Resumption == "" {
		return sp, d.Errf("tls_resume: site %v: give ticket_lifetime or resumption (a site with neither changes nothing)", sp.Hosts)
	}
	return sp, nil
}
