package earlydata

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

// tlsState is how the request reached the server.
type tlsState int

const (
	plainHTTP   tlsState = iota // r.TLS == nil
	handshaken                  // r.TLS.HandshakeComplete == true
	inEarlyData                 // r.TLS.HandshakeComplete == false (0-RTT)
)

func (s tlsState) String() string {
	return [...]string{"plain", "handshaken", "0-RTT"}[s]
}

// provision provisions g the way Caddy does, with a fresh context.
func provision(t testing.TB, g *Guard) *Guard {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := g.Provision(ctx); err != nil {
		t.Fatalf("Provision: %v", err)
	}
	return g
}

// matcherSet builds a raw matcher set from matcher name → JSON.
func matcherSet(kv ...string) caddy.ModuleMap {
	m := caddy.ModuleMap{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = json.RawMessage(kv[i+1])
	}
	return m
}

// guardConfigs are the configurations the table runs against; each is
// built fresh because Caddy consumes the raw matcher JSON when loading.
var guardConfigs = map[string]func() *Guard{
	"default": func() *Guard { return &Guard{} },
	"matchers": func() *Guard {
		return &Guard{
			RefuseRaw: caddyhttp.RawMatcherSets{matcherSet("path", `["/logout*"]`)},
			AllowRaw:  caddyhttp.RawMatcherSets{matcherSet("method", `["PUT"]`, "path", `["/idem/*"]`)},
		}
	},
	"get-only":   func() *Guard { return &Guard{Methods: []string{"get"}} },
	"refuse-all": func() *Guard { return &Guard{RefuseRaw: caddyhttp.RawMatcherSets{{}}} },
}

// countingBody records whether the handler chain read the request body.
type countingBody struct {
	r     io.Reader
	reads int
}

func (b *countingBody) Read(p []byte) (int, error) { b.reads++; return b.r.Read(p) }
func (b *countingBody) Close() error               { return nil }

type request struct {
	method, path string
	tls          tlsState
	header       []string // Early-Data values; nil = absent
	trusted      bool     // immediate peer is a trusted proxy
}

// build returns the request with the context caddyhttp.PrepareRequest
// gives it: replacer and variable table, with trusted_proxy as the server
// computed it from trusted_proxies.
func (rq request) build() (*http.Request, *countingBody) {
	body := &countingBody{r: strings.NewReader("payload=1")}
	r := httptest.NewRequest(rq.method, "https://example.com"+rq.path, nil)
	r.Body = body
	switch rq.tls {
	case plainHTTP:
		r.TLS = nil
	case handshaken:
		r.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS13}
	case inEarlyData:
		r.TLS = &tls.ConnectionState{HandshakeComplete: false, Version: tls.VersionTLS13}
	}
	if rq.header != nil {
		r.Header[headerName] = rq.header
	}
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, caddy.NewReplacer())
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{
		caddyhttp.TrustedProxyVarKey: rq.trusted,
		caddyhttp.ClientIPVarKey:     "192.0.2.7",
	})
	return r.WithContext(ctx), body
}

// nextHandler records what the handler after the guard saw.
type nextHandler struct {
	called    bool
	header    []string
	hadHeader bool
}

func (n *nextHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) error {
	n.called = true
	n.header, n.hadHeader = r.Header[headerName]
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "served")
	return nil
}

func counts() (allowed, rejected float64) {
	return testutil.ToFloat64(metrics.EarlyDataRequests.WithLabelValues("allowed")),
		testutil.ToFloat64(metrics.EarlyDataRequests.WithLabelValues("rejected"))
}

// TestGuardTable runs the handler over method × early/not × trusted/untrusted
// peer × matcher configuration.
func TestGuardTable(t *testing.T) {
	one := []string{"1"}
	for _, tc := range []struct {
		config string
		req    request
		// expectations
		status     int
		early      bool     // {http.vars.early_data} set
		nextHeader []string // Early-Data seen by the next handler (nil = absent)
	}{
		// Not early: everything passes, the guard only strips untrusted headers.
		{config: "default", req: request{method: "GET", path: "/", tls: plainHTTP}, status: 200},
		{config: "default", req: request{method: "POST", path: "/", tls: plainHTTP}, status: 200},
		{config: "default", req: request{method: "POST", path: "/", tls: handshaken}, status: 200},
		{config: "default", req: request{method: "DELETE", path: "/", tls: handshaken, trusted: true}, status: 200},
		{config: "default", req: request{method: "POST", path: "/", tls: handshaken, header: one}, status: 200},
		{config: "default", req: request{method: "POST", path: "/", tls: plainHTTP, header: []string{"1", "1"}}, status: 200},
		{config: "matchers", req: request{method: "GET", path: "/logout", tls: handshaken}, status: 200},
		{config: "matchers", req: request{method: "GET", path: "/logout", tls: handshaken, header: one}, status: 200},
		{config: "matchers", req: request{method: "PUT", path: "/idem/a", tls: handshaken, header: one}, status: 200},
		{config: "refuse-all", req: request{method: "GET", path: "/", tls: handshaken}, status: 200},

		// Early by 0-RTT: safe methods pass, the rest get 425.
		{config: "default", req: request{method: "GET", path: "/", tls: inEarlyData}, status: 200, early: true},
		{config: "default", req: request{method: "HEAD", path: "/", tls: inEarlyData}, status: 200, early: true},
		{config: "default", req: request{method: "OPTIONS", path: "/", tls: inEarlyData}, status: 200, early: true},
		{config: "default", req: request{method: "POST", path: "/", tls: inEarlyData}, status: 425, early: true},
		{config: "default", req: request{method: "PUT", path: "/", tls: inEarlyData}, status: 425, early: true},
		{config: "default", req: request{method: "PATCH", path: "/", tls: inEarlyData}, status: 425, early: true},
		{config: "default", req: request{method: "DELETE", path: "/", tls: inEarlyData}, status: 425, early: true},
		{config: "default", req: request{method: "TRACE", path: "/", tls: inEarlyData}, status: 425, early: true},
		{config: "default", req: request{method: "CONNECT", path: "/", tls: inEarlyData}, status: 425, early: true},
		// methods are case-sensitive on the wire: "get" is not GET
		{config: "default", req: request{method: "get", path: "/", tls: inEarlyData}, status: 425, early: true},
		{config: "default", req: request{method: "POST", path: "/", tls: inEarlyData, trusted: true}, status: 425, early: true},
		// an untrusted client's header is stripped even when it is early
		{config: "default", req: request{method: "GET", path: "/", tls: inEarlyData, header: one}, status: 200, early: true},
		{config: "default", req: request{method: "GET", path: "/", tls: inEarlyData, header: one, trusted: true}, status: 200, early: true, nextHeader: one},

		// Early by a trusted proxy's header.
		{config: "default", req: request{method: "GET", path: "/", tls: handshaken, header: one, trusted: true}, status: 200, early: true, nextHeader: one},
		{config: "default", req: request{method: "POST", path: "/", tls: handshaken, header: one, trusted: true}, status: 425, early: true},
		{config: "default", req: request{method: "POST", path: "/", tls: plainHTTP, header: one, trusted: true}, status: 425, early: true},
		// RFC 8470 5.1: invalid or repeated values count as "1"
		{config: "default", req: request{method: "POST", path: "/", tls: plainHTTP, header: []string{"0"}, trusted: true}, status: 425, early: true},
		{config: "default", req: request{method: "GET", path: "/", tls: plainHTTP, header: []string{""}, trusted: true}, status: 200, early: true, nextHeader: []string{""}},
		{config: "default", req: request{method: "PUT", path: "/", tls: plainHTTP, header: []string{"1", "1"}, trusted: true}, status: 425, early: true},

		// refuse: safe routes that must still wait for the handshake.
		{config: "matchers", req: request{method: "GET", path: "/logout", tls: inEarlyData}, status: 425, early: true},
		{config: "matchers", req: request{method: "HEAD", path: "/logout/all", tls: inEarlyData}, status: 425, early: true},
		{config: "matchers", req: request{method: "GET", path: "/logout", tls: handshaken, header: one, trusted: true}, status: 425, early: true},
		{config: "matchers", req: request{method: "GET", path: "/home", tls: inEarlyData}, status: 200, early: true},
		// allow: PUT on /idem/* only.
		{config: "matchers", req: request{method: "PUT", path: "/idem/a", tls: inEarlyData}, status: 200, early: true},
		{config: "matchers", req: request{method: "PUT", path: "/idem/a", tls: plainHTTP, header: one, trusted: true}, status: 200, early: true, nextHeader: one},
		{config: "matchers", req: request{method: "POST", path: "/idem/a", tls: inEarlyData}, status: 425, early: true},
		{config: "matchers", req: request{method: "PUT", path: "/other", tls: inEarlyData}, status: 425, early: true},
		{config: "matchers", req: request{method: "POST", path: "/", tls: inEarlyData}, status: 425, early: true},

		// methods: GET only.
		{config: "get-only", req: request{method: "GET", path: "/", tls: inEarlyData}, status: 200, early: true},
		{config: "get-only", req: request{method: "HEAD", path: "/", tls: inEarlyData}, status: 425, early: true},
		{config: "get-only", req: request{method: "OPTIONS", path: "/", tls: handshaken, header: one, trusted: true}, status: 425, early: true},
		// refuse *: no early request at all.
		{config: "refuse-all", req: request{method: "GET", path: "/", tls: inEarlyData}, status: 425, early: true},
		{config: "refuse-all", req: request{method: "HEAD", path: "/", tls: plainHTTP, header: one, trusted: true}, status: 425, early: true},
	} {
		name := tc.config + "/" + tc.req.method + " " + tc.req.path + "/" + tc.req.tls.String()
		if tc.req.header != nil {
			name += "/header"
			if tc.req.trusted {
				name += "-trusted"
			} else {
				name += "-untrusted"
			}
		}
		t.Run(name, func(t *testing.T) {
			g := provision(t, guardConfigs[tc.config]())
			r, body := tc.req.build()
			w := httptest.NewRecorder()
			next := new(nextHandler)
			allowed0, rejected0 := counts()

			if err := g.ServeHTTP(w, r, next); err != nil {
				t.Fatalf("ServeHTTP: %v", err)
			}

			if w.Code != tc.status {
				t.Fatalf("status = %d, want %d", w.Code, tc.status)
			}
			if next.called != (tc.status == 200) {
				t.Fatalf("next handler called = %v with status %d", next.called, w.Code)
			}
			early := caddyhttp.GetVar(r.Context(), varKey) == true
			if early != tc.early {
				t.Fatalf("{http.vars.%s} set = %v, want %v", varKey, early, tc.early)
			}
			allowed1, rejected1 := counts()
			wantAllowed, wantRejected := 0.0, 0.0
			if tc.early && tc.status == 200 {
				wantAllowed = 1
			}
			if tc.status == 425 {
				wantRejected = 1
			}
			if allowed1-allowed0 != wantAllowed || rejected1-rejected0 != wantRejected {
				t.Fatalf("counter deltas allowed %v rejected %v, want %v %v",
					allowed1-allowed0, rejected1-rejected0, wantAllowed, wantRejected)
			}

			if tc.status == 425 {
				if body.reads != 0 {
					t.Fatalf("refused request body was read %d times", body.reads)
				}
				if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Fatalf("Content-Type = %q", ct)
				}
				if !strings.HasPrefix(w.Body.String(), "425 Too Early") {
					t.Fatalf("body = %q", w.Body.String())
				}
				return
			}
			if tc.nextHeader == nil && next.hadHeader {
				t.Fatalf("next handler saw Early-Data %q; want it stripped", next.header)
			}
			if tc.nextHeader != nil && (!next.hadHeader || strings.Join(next.header, ",") != strings.Join(tc.nextHeader, ",")) {
				t.Fatalf("next handler saw Early-Data %q (present %v); want %q", next.header, next.hadHeader, tc.nextHeader)
			}
		})
	}
}

// TestGuardMatrixInvariants runs every combination of method, TLS state,
// header and peer trust through each configuration and checks the
// properties that must hold whatever the configuration.
func TestGuardMatrixInvariants(t *testing.T) {
	methods := []string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "PROPFIND"}
	paths := []string{"/", "/logout", "/idem/x"}
	headers := [][]string{nil, {"1"}, {"0", "1"}}
	for config, newGuard := range guardConfigs {
		g := provision(t, newGuard())
		for _, method := range methods {
			for _, path := range paths {
				for _, state := range []tlsState{plainHTTP, handshaken, inEarlyData} {
					for _, hdr := range headers {
						for _, trusted := range []bool{false, true} {
							rq := request{method: method, path: path, tls: state, header: hdr, trusted: trusted}
							r, _ := rq.build()
							w := httptest.NewRecorder()
							next := new(nextHandler)
							if err := g.ServeHTTP(w, r, next); err != nil {
								t.Fatal(err)
							}
							early := state == inEarlyData || (hdr != nil && trusted)
							switch {
							case !early && w.Code != 200:
								t.Errorf("%s %+v: request that is not early got %d", config, rq, w.Code)
							case w.Code != 200 && w.Code != 425:
								t.Errorf("%s %+v: status %d", config, rq, w.Code)
							case w.Code == 425 && next.called:
								t.Errorf("%s %+v: next handler ran after 425", config, rq)
							case next.called && next.hadHeader && !trusted:
								t.Errorf("%s %+v: untrusted Early-Data header reached the next handler", config, rq)
							case next.called && hdr != nil && trusted && !next.hadHeader:
								t.Errorf("%s %+v: trusted proxy's Early-Data header was removed", config, rq)
							case early && (method == "POST" || method == "PATCH" || method == "DELETE") && w.Code != 425:
								t.Errorf("%s %+v: early %s was served", config, rq, method)
							case early && strings.HasPrefix(path, "/logout") && config == "matchers" && w.Code != 425:
								t.Errorf("%s %+v: refused route was served early", config, rq)
							case (caddyhttp.GetVar(r.Context(), varKey) == true) != early:
								t.Errorf("%s %+v: early_data variable wrong", config, rq)
							}
						}
					}
				}
			}
		}
	}
}

// errMatcher is a request matcher that always fails, to check that the
// guard fails closed when a refuse or allow matcher cannot decide.
type errMatcher struct{}

func (errMatcher) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.matchers.earlydata_test_error", New: func() caddy.Module { return new(errMatcher) }}
}
func (errMatcher) MatchWithError(*http.Request) (bool, error) { return false, errors.New("boom") }

func init() { caddy.RegisterModule(errMatcher{}) }

func TestGuardMatcherErrorFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		guard  *Guard
		method string
	}{
		{"refuse error on a safe method", &Guard{RefuseRaw: caddyhttp.RawMatcherSets{matcherSet("earlydata_test_error", "{}")}}, "GET"},
		{"allow error on an unsafe method", &Guard{AllowRaw: caddyhttp.RawMatcherSets{matcherSet("earlydata_test_error", "{}")}}, "POST"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := provision(t, tc.guard)
			r, _ := request{method: tc.method, path: "/", tls: inEarlyData}.build()
			w := httptest.NewRecorder()
			next := new(nextHandler)
			if err := g.ServeHTTP(w, r, next); err != nil {
				t.Fatal(err)
			}
			if w.Code != 425 || next.called {
				t.Fatalf("status %d, next called %v; want 425 without next", w.Code, next.called)
			}
			// The same request after the handshake never consults the matchers.
			r, _ = request{method: tc.method, path: "/", tls: handshaken}.build()
			w = httptest.NewRecorder()
			if err := g.ServeHTTP(w, r, next); err != nil || w.Code != 200 {
				t.Fatalf("after handshake: status %d err %v", w.Code, err)
			}
		})
	}
}

func TestProvisionErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		json    string
		wantErr string
	}{
		{"empty methods", `{"methods": []}`, "methods: the list is empty"},
		{"invalid method", `{"methods": ["GET", "PO ST"]}`, `methods: "PO ST" is not a valid HTTP method`},
		{"unknown refuse matcher", `{"refuse": [{"no_such_matcher": {}}]}`, "refuse: loading matchers"},
		{"unknown allow matcher", `{"allow": [{"no_such_matcher": {}}]}`, "allow: loading matchers"},
		{"bad matcher config", `{"refuse": [{"path": 42}]}`, "refuse"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Guard
			if err := json.Unmarshal([]byte(tc.json), &g); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
			defer cancel()
			err := g.Provision(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Provision error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestJSONFields checks the JSON shape the Caddyfile adapter and users write.
func TestJSONFields(t *testing.T) {
	in := `{"methods":["GET"],"refuse":[{"path":["/logout"]}],"allow":[{"method":["PUT"]}]}`
	var g Guard
	if err := json.Unmarshal([]byte(in), &g); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Fatalf("round trip:\n got %s\nwant %s", out, in)
	}
	provision(t, &g)
	r, _ := request{method: "GET", path: "/logout", tls: inEarlyData}.build()
	w := httptest.NewRecorder()
	if err := g.ServeHTTP(w, r, new(nextHandler)); err != nil || w.Code != 425 {
		t.Fatalf("GET /logout early: %d %v", w.Code, err)
	}
}

func TestModuleInfo(t *testing.T) {
	mod, err := caddy.GetModule("http.handlers.early_data_guard")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mod.New().(*Guard); !ok {
		t.Fatalf("New() = %T", mod.New())
	}
}
