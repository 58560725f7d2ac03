package clientcert_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/tlsresume/caddy-tlsresume/clientcert"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

const adaptCaddyfile = `{
	admin off
	auto_https disable_redirects
	storage file_system {{DIR}}/storage
}

https://localhost:8443 {
	tls {{DIR}}/server.pem {{DIR}}/server.key {
		client_auth {
			mode require_and_verify
			trust_pool file {{DIR}}/ca.pem
			verifier client_cert {
				spiffe_id spiffe://prod.example.org/*
				issuer "CN=Payments Issuing CA" O=Example
				min_remaining_validity 1h
			}
		}
	}
	@payments client_cert {
		spiffe_id spiffe://prod.example.org/ns/payments/*
		subject CN=payments-* OU=payments
		subject CN=admin
		san_ip 10.0.0.0/8
		serial 0x1003
	}
	@partner client_cert san_dns *.partner.example.com
	@web expression client_cert({'spiffe_id': 'spiffe://prod.example.org/ns/web/*'})
	respond @payments "payments" 200
	respond @partner "partner" 200
	respond @web "web" 200
	respond "nobody" 403
}
`

// TestCaddyAdapt adapts a Caddyfile using the matcher (block, one-line and
// CEL forms) and the verifier, checks the JSON Caddy produces, and
// validates the whole config: Caddy loads and provisions every module from
// that JSON, as `caddy adapt --validate` does.
func TestCaddyAdapt(t *testing.T) {
	dir := t.TempDir()
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	cfgText := strings.ReplaceAll(adaptCaddyfile, "{{DIR}}", filepath.ToSlash(dir))
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, warnings, err := adapter.Adapt([]byte(cfgText), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	if len(warnings) > 0 {
		t.Errorf("adapt warnings: %v", warnings)
	}

	var doc any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	var matchers, verifiers []map[string]any
	var exprs []string
	walk(doc, func(obj map[string]any) {
		if m, ok := obj["client_cert"].(map[string]any); ok {
			matchers = append(matchers, m)
		}
		if obj["verifier"] == "client_cert" {
			verifiers = append(verifiers, obj)
		}
		if e, ok := obj["expression"].(string); ok {
			exprs = append(exprs, e)
		}
	})

	wantMatchers := []string{
		`{"serial":["0x1003"],"san_ip":["10.0.0.0/8"],"spiffe_id":["spiffe://prod.example.org/ns/payments/*"],"subject":["CN=payments-*, OU=payments","CN=admin"]}`,
		`{"san_dns":["*.partner.example.com"]}`,
	}
	if len(matchers) != len(wantMatchers) {
		t.Fatalf("found %d client_cert matchers in\n%s", len(matchers), out)
	}
	var got, want []string
	for i := range matchers {
		g, _ := json.Marshal(matchers[i])
		got = append(got, string(g))
		var w any
		if err := json.Unmarshal([]byte(wantMatchers[i]), &w); err != nil {
			t.Fatal(err)
		}
		wb, _ := json.Marshal(w)
		want = append(want, string(wb))

		// the JSON loads and provisions as the module
		var m clientcert.MatchClientCert
		if err := caddy.StrictUnmarshalJSON(g, &m); err != nil {
			t.Fatal(err)
		}
		if err := m.Provision(caddy.Context{}); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(got)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("client_cert matchers:\n got  %q\n want %q", got, want)
	}
	if len(verifiers) != 1 {
		t.Fatalf("found %d client_cert verifiers in\n%s", len(verifiers), out)
	}
	assertJSONEqual(t, verifiers[0], `{"verifier":"client_cert","spiffe_id":["spiffe://prod.example.org/*"],`+
		`"issuer":["CN=Payments Issuing CA, O=Example"],"min_remaining_validity":3600000000000}`)
	if len(exprs) != 1 || exprs[0] != `client_cert({'spiffe_id': 'spiffe://prod.example.org/ns/web/*'})` {
		t.Errorf("expression matchers: %q", exprs)
	}

	// Load and provision the whole adapted config without starting it.
	if err := caddy.Validate(mustConfig(t, out)); err != nil {
		t.Fatalf("adapted config does not validate: %v", err)
	}

	// Mistakes surface from `caddy adapt` with the Caddyfile position.
	bad := strings.Replace(cfgText, "spiffe://prod.example.org/*", "spiffe://prod.example.org//x", 1)
	_, _, err = adapter.Adapt([]byte(bad), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), `spiffe_id "spiffe://prod.example.org//x"`) || !strings.Contains(err.Error(), "Caddyfile:13") {
		t.Errorf("bad verifier: %v", err)
	}
	bad = strings.Replace(cfgText, "san_ip 10.0.0.0/8", "san_cidr 10.0.0.0/8", 1)
	_, _, err = adapter.Adapt([]byte(bad), map[string]any{"filename": "Caddyfile"})
	if err == nil || !strings.Contains(err.Error(), `unknown field "san_cidr"`) {
		t.Errorf("unknown matcher field: %v", err)
	}
}

func mustConfig(t *testing.T, raw []byte) *caddy.Config {
	t.Helper()
	var cfg caddy.Config
	if err := caddy.StrictUnmarshalJSON(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func walk(v any, visit func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		visit(x)
		for _, c := range x {
			walk(c, visit)
		}
	case []any:
		for _, c := range x {
			walk(c, visit)
		}
	}
}

func assertJSONEqual(t *testing.T, got map[string]any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(any(got), w) {
		g, _ := json.Marshal(got)
		t.Errorf("got  %s\nwant %s", g, want)
	}
}
