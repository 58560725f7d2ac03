package earlydata

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// discard is the cheapest possible next handler, so the benchmarks measure
// the guard itself.
var discard = caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })

// BenchmarkGuardNotEarly measures the guard on an ordinary request: TLS
// handshake complete, no Early-Data header, a few typical headers. Budget:
// under 50 ns and 0 allocations per request.
func BenchmarkGuardNotEarly(b *testing.B) {
	g := provision(b, &Guard{
		RefuseRaw: caddyhttp.RawMatcherSets{matcherSet("path", `["/logout"]`)},
		AllowRaw:  caddyhttp.RawMatcherSets{matcherSet("method", `["PUT"]`)},
	})
	r, _ := request{method: "POST", path: "/api/orders", tls: handshaken}.build()
	// A browser-like header set: more than 8 entries, so the header lookup
	// takes the hashed (not the small-map) path.
	for k, v := range map[string]string{
		"Accept": "application/json", "Accept-Encoding": "gzip, br", "Accept-Language": "en",
		"User-Agent": "bench/1.0", "Content-Type": "application/json", "Content-Length": "2",
		"Cookie": "session=abc", "Authorization": "Bearer x", "Origin": "https://example.com",
		"Referer": "https://example.com/", "Sec-Fetch-Mode": "cors",
	} {
		r.Header.Set(k, v)
	}
	r.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13}
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := g.ServeHTTP(w, r, discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNextOnly is the baseline of BenchmarkGuardNotEarly: the same
// request handed straight to the next handler. The guard's own cost is the
// difference between the two.
func BenchmarkNextOnly(b *testing.B) {
	r, _ := request{method: "POST", path: "/api/orders", tls: handshaken}.build()
	w := httptest.NewRecorder()
	var next caddyhttp.Handler = discard
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := next.ServeHTTP(w, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGuardEarlyAllowed measures the path of a GET received in 0-RTT
// (for information; there is no budget on early requests).
func BenchmarkGuardEarlyAllowed(b *testing.B) {
	g := provision(b, &Guard{})
	r, _ := request{method: "GET", path: "/", tls: inEarlyData}.build()
	w := httptest.NewRecorder()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := g.ServeHTTP(w, r, discard); err != nil {
			b.Fatal(err)
		}
	}
}
