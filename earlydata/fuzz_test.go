package earlydata

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// FuzzUnmarshalCaddyfile feeds arbitrary Caddyfile text to the directive
// parser: it must return an error or a guard, never panic, and a guard it
// returns must have only valid methods.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"early_data_guard",
		"early_data_guard {\n methods GET HEAD\n refuse /logout\n allow {\n method PUT\n }\n}",
		"early_data_guard {\n refuse path /a /b\n refuse *\n allow @x\n}",
		"early_data_guard {\n methods\n}",
		"early_data_guard {\n refuse {\n not path /x\n }\n}",
		"early_data_guard {\n allow /a {\n }\n}",
		"early_data_guard x {\n}",
		"early_data_guard {\n refuse `{path} == '/'`\n}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		var g Guard
		if err := g.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		for _, m := range g.Methods {
			if !validMethod(m) || m != strings.ToUpper(m) {
				t.Fatalf("parser accepted method %q from %q", m, input)
			}
		}
	})
}

// FuzzGuardServeHTTP sends requests with arbitrary methods, paths and
// Early-Data values through a guard and checks the properties every response
// must have.
func FuzzGuardServeHTTP(f *testing.F) {
	f.Add("GET", "/", "1", true, true, false)
	f.Add("POST", "/logout", "1", false, true, true)
	f.Add("get", "/idem/a", "0", false, true, false)
	f.Add("PUT", "/idem/a", "", true, false, true)
	g := provision(f, &Guard{
		RefuseRaw: caddyhttp.RawMatcherSets{matcherSet("path", `["/logout*"]`)},
		AllowRaw:  caddyhttp.RawMatcherSets{matcherSet("method", `["PUT"]`, "path", `["/idem/*"]`)},
	})
	f.Fuzz(func(t *testing.T, method, path, headerValue string, zeroRTT, withHeader, trusted bool) {
		if !validMethod(method) {
			return // net/http's parsers refuse such methods before any handler
		}
		// only request targets an HTTP server would hand to a handler
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "#?") ||
			strings.IndexFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			return
		}
		if _, err := url.ParseRequestURI(path); err != nil {
			return
		}
		state := handshaken
		if zeroRTT {
			state = inEarlyData
		}
		var hdr []string
		if withHeader {
			hdr = []string{headerValue}
		}
		r, body := request{method: method, path: path, tls: state, header: hdr, trusted: trusted}.build()
		w := httptest.NewRecorder()
		next := new(nextHandler)
		if err := g.ServeHTTP(w, r, next); err != nil {
			t.Fatal(err)
		}
		early := zeroRTT || (withHeader && trusted)
		if !early && w.Code != 200 {
			t.Fatalf("not early, got %d", w.Code)
		}
		if w.Code == 425 && (next.called || body.reads != 0) {
			t.Fatal("425 but the request went further")
		}
		if early && !g.isSafeMethod(method) && method != "PUT" && w.Code != 425 {
			t.Fatalf("early %q served", method)
		}
		if next.called && next.hadHeader && !trusted {
			t.Fatal("untrusted Early-Data header passed")
		}
	})
}
