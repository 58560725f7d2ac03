package caddyfile

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/tlsresume/caddy-tlsresume/earlydata"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("early_data_guard", parseEarlyDataGuard)

	// The guard must run before every handler that can have side effects,
	// without the user writing `order` or `route`. In Caddy's default order
	// (caddyhttp/httpcaddyfile/directives.go) the directives up to and
	// including `header` have none: tracing, map, vars, fs, root, log_append,
	// log_skip/skip_log and log_name only set variables or log metadata, and
	// header only edits response headers. Placing the guard right after
	// `header` (before request_body, redir, rewrite, the auth handlers,
	// forward_auth, templates, handle/route, respond, reverse_proxy,
	// php_fastcgi and file_server) keeps it ahead of everything that acts on
	// a request, while
	//   - `log_append` wraps the guard, so `log_append early_data
	//     {http.vars.early_data}` records early requests in the access log
	//     even when the guard refuses them (log_append adds its field after
	//     the inner handlers return);
	//   - `map` and `vars` can feed the guard's refuse/allow matchers;
	//   - headers set with `header` (HSTS, CORS, Alt-Svc) are on 425
	//     responses too, so browsers can read them and retry.
	httpcaddyfile.RegisterDirectiveOrder("early_data_guard", httpcaddyfile.After, "header")
}

// parseEarlyDataGuard sets up the early_data_guard handler from its
// directive; see earlydata.Guard.UnmarshalCaddyfile for the syntax. Matcher
// tokens in refuse/allow resolve against the site's named matchers, like the
// directive's own matcher.
func parseEarlyDataGuard(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	g := new(earlydata.Guard)
	resolve := func(tkn caddyfile.Token) (caddy.ModuleMap, bool, error) {
		return h.WithDispenser(caddyfile.NewDispenser([]caddyfile.Token{tkn})).MatcherToken()
	}
	if err := g.UnmarshalCaddyfileMatchers(h.Dispenser, resolve); err != nil {
		return nil, err
	}
	return g, nil
}
