package earlydata

import (
	"fmt"
	"strings"
)

// headerName is the RFC 8470 request header by which an intermediary tells
// the next hop that it forwarded a request before its own TLS handshake with
// the client had completed.
const headerName = "Early-Data"

// varKey is the request variable the guard sets to true on every request it
// treats as early data, whether it lets the request through or refuses it.
// It is available as the placeholder {http.vars.early_data}; for example
// `log_append early_data {http.vars.early_data}` writes it into the access
// log. Requests that are not early leave the variable unset.
const varKey = "early_data"

// defaultMethods are the methods served from early data when the guard's
// `methods` option is not set: the methods RFC 9110 (section 9.2.1) defines
// as safe, minus TRACE, which no application should answer anyway.
var defaultMethods = []string{"GET", "HEAD", "OPTIONS"}

// rfcSafeMethods are the methods RFC 9110 defines as safe. Configuring any
// other method as replayable is allowed but logged as a warning.
var rfcSafeMethods = map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true}

// classify decides whether a request is early data and whether its
// Early-Data header must be removed before it goes further.
//
//   - inEarlyData: the request itself arrived before the TLS (QUIC) handshake
//     with the immediate peer completed (r.TLS.HandshakeComplete == false).
//   - hasHeader: the request carries an Early-Data header. RFC 8470 section
//     5.1 says multiple or invalid instances count as "1", so any value does.
//   - trustedPeer: the immediate peer is one of the server's trusted_proxies.
//
// Only a trusted proxy may declare a request early: an Early-Data header from
// anyone else neither makes the request early nor survives, so a handler or
// upstream behind this one can rely on the header having been set by Caddy or
// a trusted proxy. The header of a trusted peer is kept, as RFC 8470 asks
// ("A server MUST NOT remove this header field").
func classify(inEarlyData, hasHeader, trustedPeer bool) (early, stripHeader bool) {
	early = inEarlyData || (hasHeader && trustedPeer)
	stripHeader = hasHeader && !trustedPeer
	return early, stripHeader
}

// admit decides whether an early request may be served now (true) or must be
// answered 425 Too Early (false).
//
//   - safeMethod: the request method is one of the guard's methods.
//   - refused: the request matches one of the guard's refuse matcher sets (a
//     safe route with side effects, such as GET /logout). Refusal wins over
//     everything, so that a refuse rule can never be undone by an allow rule.
//   - allowed: the request matches one of the guard's allow matcher sets (a
//     route the operator has made replay-safe, such as an idempotent PUT).
func admit(safeMethod, refused, allowed bool) bool {
	if refused {
		return false
	}
	return safeMethod || allowed
}

// normalizeMethods validates the configured methods and returns them in upper
// case without duplicates; nil means the defaults.
func normalizeMethods(methods []string) ([]string, error) {
	if methods == nil {
		return append([]string(nil), defaultMethods...), nil
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("methods: the list is empty; omit it for the default (%s) or list at least one method", strings.Join(defaultMethods, ", "))
	}
	out := make([]string, 0, len(methods))
	for _, m := range methods {
		if !validMethod(m) {
			return nil, fmt.Errorf("methods: %q is not a valid HTTP method", m)
		}
		up := strings.ToUpper(m)
		dup := false
		for _, have := range out {
			if have == up {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, up)
		}
	}
	return out, nil
}

// validMethod reports whether m is a syntactically valid HTTP method: a
// non-empty RFC 9110 token.
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !isTokenChar(m[i]) {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c is a tchar of RFC 9110 section 5.6.2.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
