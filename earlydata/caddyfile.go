package earlydata

import (
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// MatcherTokenResolver turns a matcher token (`@name`, `/path` or `*`) into a
// matcher set, the way the HTTP Caddyfile adapter resolves the matcher token
// of a directive. It reports false when the token is not a matcher token.
// The adapter's resolver knows the site's named matchers.
type MatcherTokenResolver func(caddyfile.Token) (caddy.ModuleMap, bool, error)

// UnmarshalCaddyfile sets up the guard from Caddyfile tokens. Syntax:
//
//	early_data_guard [<matcher>] {
//		methods <method...>
//		refuse  <matcher_token> | <inline_matchers>
//		allow   <matcher_token> | <inline_matchers>
//	}
//
// With no block, early requests are served for GET, HEAD and OPTIONS and
// refused with 425 Too Early for every other method.
//
// `methods` replaces the default list of methods served from early data
// (names are upper-cased; repeating the option adds to the list). It needs at
// least one method.
//
// `refuse` and `allow` each add one matcher set; they may be repeated, and a
// request matches the option when it matches any of its sets. A matcher set
// is given as a matcher token, exactly like a directive's matcher: `@name`
// (a named matcher defined in the site), `/path` (a path matcher) or `*`
// (every request), or inline, like the `not` matcher, on the same line or in
// a block:
//
//	@logout path /logout /session/end
//	early_data_guard {
//		refuse @logout
//		refuse path /admin/*
//		allow {
//			method PUT
//			path /api/idempotent/*
//		}
//	}
//
// An early request matching a `refuse` set is refused even if its method is
// safe; an early request matching an `allow` set is served even if its
// method is not in `methods`; `refuse` wins when both match.
//
// The directive needs no `order`: by default it runs right after `header`,
// before every directive that acts on a request. Every early request sets
// {http.vars.early_data} to true; to show it in the access log:
//
//	log_append early_data {http.vars.early_data}
//
// Named matchers can only be resolved by the HTTP Caddyfile adapter (see
// UnmarshalCaddyfileMatchers); here `@name` is an error.
func (g *Guard) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return g.UnmarshalCaddyfileMatchers(d, nil)
}

// UnmarshalCaddyfileMatchers is UnmarshalCaddyfile with a resolver for matcher
// tokens; the `early_data_guard` directive passes one that knows the site's
// named matchers. A nil resolver handles `/path` and `*` and rejects `@name`.
func (g *Guard) UnmarshalCaddyfileMatchers(d *caddyfile.Dispenser, resolve MatcherTokenResolver) error {
	if resolve == nil {
		resolve = resolveWithoutNames
	}
	d.Next() // consume directive name
	if d.NextArg() {
		return d.Errf("early_data_guard: unexpected argument %q (options go in a block: methods, refuse, allow)", d.Val())
	}
	for d.NextBlock(0) {
		switch opt := d.Val(); opt {
		case "methods":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("early_data_guard: methods: at least one HTTP method is required")
			}
			for _, m := range args {
				if !validMethod(m) {
					return d.Errf("early_data_guard: methods: %q is not a valid HTTP method", m)
				}
				g.Methods = append(g.Methods, strings.ToUpper(m))
			}
			if d.NextBlock(d.Nesting()) {
				return d.Errf("early_data_guard: methods: unexpected block")
			}

		case "refuse", "allow":
			set, err := parseMatcherSet(d, opt, resolve)
			if err != nil {
				return err
			}
			if opt == "refuse" {
				g.RefuseRaw = append(g.RefuseRaw, set)
			} else {
				g.AllowRaw = append(g.AllowRaw, set)
			}

		default:
			return d.Errf("early_data_guard: unrecognized subdirective %q (want methods, refuse or allow)", opt)
		}
	}
	return nil
}

// parseMatcherSet parses the matcher set following a refuse or allow option;
// the dispenser is on the option's token.
func parseMatcherSet(d *caddyfile.Dispenser, opt string, resolve MatcherTokenResolver) (caddy.ModuleMap, error) {
	if d.NextArg() {
		tkn := d.Token()
		if !tkn.Quoted() && isMatcherToken(tkn.Text) {
			set, ok, err := resolve(tkn)
			if err != nil {
				return nil, d.Errf("early_data_guard: %s: %v", opt, err)
			}
			if !ok {
				return nil, d.Errf("early_data_guard: %s: %q is not a matcher", opt, tkn.Text)
			}
			if d.NextArg() {
				return nil, d.Errf("early_data_guard: %s: unexpected argument %q after matcher %q", opt, d.Val(), tkn.Text)
			}
			if d.NextBlock(d.Nesting()) {
				return nil, d.Errf("early_data_guard: %s: unexpected block after matcher %q", opt, tkn.Text)
			}
			if set == nil {
				// `*`: the empty matcher set matches every request.
				set = caddy.ModuleMap{}
			}
			return set, nil
		}
		d.Prev() // an inline matcher set: let the nested parser see its name
	}
	set, err := caddyhttp.ParseCaddyfileNestedMatcherSet(d)
	if err != nil {
		// the nested parser's errors already carry the file and line
		return nil, fmt.Errorf("early_data_guard: %s: %w", opt, err)
	}
	if len(set) == 0 {
		return nil, d.Errf("early_data_guard: %s: a matcher is required (@name, /path, * or an inline matcher set)", opt)
	}
	return set, nil
}

// isMatcherToken reports whether s has the form of a directive's matcher
// token.
func isMatcherToken(s string) bool {
	return s == "*" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "@")
}

// resolveWithoutNames resolves `*` and `/path` tokens; named matchers need
// the HTTP Caddyfile adapter.
func resolveWithoutNames(tkn caddyfile.Token) (caddy.ModuleMap, bool, error) {
	switch {
	case tkn.Text == "*":
		return nil, true, nil
	case strings.HasPrefix(tkn.Text, "/"):
		return caddy.ModuleMap{"path": caddyconfig.JSON(caddyhttp.MatchPath{tkn.Text}, nil)}, true, nil
	case strings.HasPrefix(tkn.Text, "@"):
		return nil, false, errNamedMatcherNeedsAdapter(tkn.Text)
	}
	return nil, false, nil
}

type errNamedMatcherNeedsAdapter string

func (e errNamedMatcherNeedsAdapter) Error() string {
	return "named matcher " + string(e) + " can only be resolved by the HTTP Caddyfile adapter; use an inline matcher set"
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Guard)(nil)
