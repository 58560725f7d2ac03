package clientcert

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

func newMatcher(t testing.TB, p Policy) *MatchClientCert {
	t.Helper()
	m := &MatchClientCert{Policy: p}
	if err := m.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	return m
}

func requestWith(cs *tls.ConnectionState) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "https://localhost/", nil)
	r.TLS = cs
	// Caddy's server puts a replacer in every request's context; CEL
	// expressions using other matchers need it.
	repl := caddy.NewReplacer()
	return r.WithContext(context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl))
}

func TestMatcherOverRealHandshakes(t *testing.T) {
	f := getFixtures(t)
	payments := Policy{SPIFFEID: []string{"spiffe://prod.example.org/ns/payments/*"}, Issuer: []string{"CN=Payments Issuing CA"}}
	for _, tc := range []struct {
		name   string
		mode   tls.ClientAuthType
		client *pki.Leaf
		policy Policy
		want   bool
	}{
		{"verified payments", tls.RequireAndVerifyClientCert, f.payments, payments, true},
		{"verified web", tls.RequireAndVerifyClientCert, f.web, payments, false},
		{"verified RSA payments", tls.RequireAndVerifyClientCert, f.rsaPayments, payments, true},
		{"no certificate", tls.VerifyClientCertIfGiven, nil, Policy{}, false},
		{"unverified certificate refused by default", tls.RequireAnyClientCert, f.payments, payments, false},
		{"unverified certificate, empty policy", tls.RequireAnyClientCert, f.payments, Policy{}, false},
		{"unverified certificate allowed", tls.RequireAnyClientCert, f.payments,
			Policy{SPIFFEID: payments.SPIFFEID, AllowUnverified: true}, true},
		{"unverified certificate allowed but no match", tls.RequireAnyClientCert, f.web,
			Policy{SPIFFEID: payments.SPIFFEID, AllowUnverified: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := handshake(t, f, tc.mode, tc.client, nil, nil)
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			m := newMatcher(t, tc.policy)
			got, err := m.MatchWithError(requestWith(&cs))
			if err != nil || got != tc.want || m.Match(requestWith(&cs)) != tc.want {
				t.Errorf("match = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if newMatcher(t, Policy{}).Match(requestWith(nil)) {
		t.Error("plain-HTTP request matched")
	}
}

// TestMatcherOnResumedConnection checks that a resumed TLS session gives
// the matcher the verified chain of the original handshake, so it answers
// the same.
func TestMatcherOnResumedConnection(t *testing.T) {
	f := getFixtures(t)
	m := newMatcher(t, Policy{SPIFFEID: []string{"spiffe://prod.example.org/ns/payments/*"}, Issuer: []string{"CN=Payments Issuing CA"}})
	for _, client := range []*pki.Leaf{f.payments, f.web} {
		cache := tls.NewLRUClientSessionCache(4)
		full, err := handshake(t, f, tls.RequireAndVerifyClientCert, client, cache, nil)
		if err != nil {
			t.Fatal(err)
		}
		resumed, err := handshake(t, f, tls.RequireAndVerifyClientCert, client, cache, nil)
		if err != nil {
			t.Fatal(err)
		}
		if full.DidResume || !resumed.DidResume {
			t.Fatalf("DidResume full=%v resumed=%v; want false, true", full.DidResume, resumed.DidResume)
		}
		if len(resumed.VerifiedChains) == 0 {
			t.Fatal("resumed connection has no verified chain")
		}
		a, b := m.Match(requestWith(&full)), m.Match(requestWith(&resumed))
		if a != b || a != (client == f.payments) {
			t.Errorf("%s: full %v, resumed %v", leafOf(full).Subject.CommonName, a, b)
		}
	}
}

func TestMatcherJSONRoundTrip(t *testing.T) {
	in := `{"subject":["CN=api-*, O=Example"],"issuer":["CN=Payments Issuing CA"],"san_dns":["*.example.com"],` +
		`"san_uri":["https://x/*"],"san_email":["*@example.com"],"san_ip":["10.0.0.0/8"],` +
		`"spiffe_id":["spiffe://prod.example.org/ns/payments/*"],` +
		`"fingerprint":["` + strings.Repeat("ab", 32) + `"],"serial":["0x1003"],` +
		`"min_remaining_validity":604800000000000,"allow_unverified":true}`
	var m MatchClientCert
	if err := caddy.StrictUnmarshalJSON([]byte(in), &m); err != nil {
		t.Fatal(err)
	}
	if err := m.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	_ = json.Unmarshal([]byte(in), &a)
	_ = json.Unmarshal(out, &b)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("round trip:\n in  %s\n out %s", in, out)
	}
	// Caddy decodes module JSON strictly: a misspelt field is an error.
	var bad MatchClientCert
	if err := caddy.StrictUnmarshalJSON([]byte(`{"spiffe":["spiffe://x"]}`), &bad); err == nil || !strings.Contains(err.Error(), "spiffe") {
		t.Errorf("unknown field: %v", err)
	}
	// durations may also be written as strings
	var d MatchClientCert
	if err := caddy.StrictUnmarshalJSON([]byte(`{"min_remaining_validity":"7d"}`), &d); err != nil || time.Duration(d.MinRemainingValidity) != 7*24*time.Hour {
		t.Errorf("duration string: %v %v", err, d.MinRemainingValidity)
	}
}

// TestMatcherInCELExpression provisions Caddy's expression matcher, which
// collects every CELLibraryProducer among the registered http.matchers.
func TestMatcherInCELExpression(t *testing.T) {
	f := getFixtures(t)
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	defer cancel()
	full, err := handshake(t, f, tls.RequireAndVerifyClientCert, f.payments, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	web, err := handshake(t, f, tls.RequireAndVerifyClientCert, f.web, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		expr          string
		payments, web bool
	}{
		{`client_cert({'spiffe_id': 'spiffe://prod.example.org/ns/payments/*'})`, true, false},
		{`client_cert({'spiffe_id': ['spiffe://prod.example.org/ns/payments/*', 'spiffe://prod.example.org/ns/web/*'], 'issuer': 'CN=* Issuing CA'})`, true, true},
		{`client_cert({'subject': 'CN=web-*, O=Example Corp'}) || path('/public/*')`, false, true},
		{`!client_cert({'issuer': ['CN=Payments Issuing CA']})`, false, true},
		{`client_cert({'min_remaining_validity': '1h', 'allow_unverified': 'false'})`, true, true},
	} {
		m := caddyhttp.MatchExpression{Expr: tc.expr}
		if err := m.Provision(ctx); err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		for _, c := range []struct {
			cs   *tls.ConnectionState
			want bool
		}{{&full, tc.payments}, {&web, tc.web}} {
			got, err := m.MatchWithError(requestWith(c.cs))
			if err != nil || got != c.want {
				t.Errorf("%s for %s: %v, %v; want %v", tc.expr, leafOf(*c.cs).Subject.CommonName, got, err, c.want)
			}
		}
	}
	for _, tc := range []struct{ expr, want string }{
		{`client_cert({'spiffe_id': 'spiffe://Prod.example.org/x'})`, "spiffe_id"},
		{`client_cert({'spiffe': 'spiffe://prod.example.org/x'})`, `unknown field "spiffe"`},
		{`client_cert({'min_remaining_validity': ['1h', '2h']})`, "exactly one duration"},
		{`client_cert({'san_ip': []})`, "san_ip needs at least one value"},
		{`client_cert('spiffe://prod.example.org/x')`, "map literal"},
	} {
		m := caddyhttp.MatchExpression{Expr: tc.expr}
		if err := m.Provision(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: provision error %v; want it to contain %q", tc.expr, err, tc.want)
		}
	}
}

func TestMatcherDoesNotAllocate(t *testing.T) {
	f := getFixtures(t)
	m := newMatcher(t, Policy{
		SPIFFEID:             []string{"spiffe://prod.example.org/ns/payments/*"},
		Issuer:               []string{"CN=Payments Issuing CA"},
		MinRemainingValidity: caddy.Duration(time.Hour),
	})
	cs := f.state(t, f.payments)
	r := requestWith(&cs)
	if !m.Match(r) {
		t.Fatal("no match")
	}
	if n := testing.AllocsPerRun(200, func() { m.Match(r) }); n != 0 {
		t.Errorf("Match allocates %v times per call", n)
	}
}
