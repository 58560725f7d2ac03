package clientcert

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestCaddyAdaptCommand runs `caddy adapt --validate` of the plugin's Caddy
// build on a Caddyfile using the matcher (block, one-line and CEL forms)
// and the verifier, and checks the JSON they become; then checks that
// mistakes fail the command with the field, the value and the line.
func TestCaddyAdaptCommand(t *testing.T) {
	bin := harness.BuildCaddy(t)
	_, files := harness.NewPKI(t)
	dir := t.TempDir()
	adapt := func(caddyfile string) ([]byte, string, error) {
		t.Helper()
		path := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "adapt", "--config", path, "--adapter", "caddyfile", "--validate")
		cmd.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return out, stderr.String(), err
	}
	site := fmt.Sprintf(`{
	storage file_system %s
	skip_install_trust
}

https://localhost:8443 {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
			verifier client_cert {
				spiffe_id spiffe://demo.example.org/*
				issuer "CN=caddy-tlsresume Test Intermediate CA" O=*
			}
		}
	}
	@payments client_cert {
		spiffe_id spiffe://demo.example.org/ns/payments/*
		fingerprint %s
		min_remaining_validity 7d
	}
	@partner client_cert san_dns *.partner.example.com
	@web expression client_cert({'spiffe_id': 'spiffe://demo.example.org/ns/web/*'})
	respond @payments "payments"
	respond @partner "partner"
	respond @web "web"
}
`, filepath.Join(dir, "storage"), files.ServerCert, files.ServerKey, files.CA, strings.Repeat("aB", 32))

	out, stderr, err := adapt(site)
	if err != nil {
		t.Fatalf("caddy adapt --validate: %v\n%s", err, stderr)
	}
	var doc any
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("adapted JSON: %v\n%s", err, out)
	}
	var matchers []string
	var verifiers []string
	var exprs []string
	walk(doc, func(obj map[string]any) {
		if m, ok := obj["client_cert"]; ok {
			b, _ := json.Marshal(m)
			matchers = append(matchers, string(b))
		}
		if obj["verifier"] == "client_cert" {
			b, _ := json.Marshal(obj)
			verifiers = append(verifiers, string(b))
		}
		if e, ok := obj["expression"].(string); ok {
			exprs = append(exprs, e)
		}
	})
	sort.Strings(matchers)
	wantMatchers := []string{
		`{"fingerprint":["` + strings.Repeat("aB", 32) + `"],"min_remaining_validity":604800000000000,"spiffe_id":["spiffe://demo.example.org/ns/payments/*"]}`,
		`{"san_dns":["*.partner.example.com"]}`,
	}
	if !reflect.DeepEqual(matchers, wantMatchers) {
		t.Errorf("matchers:\n got  %q\n want %q", matchers, wantMatchers)
	}
	wantVerifier := `{"issuer":["CN=caddy-tlsresume Test Intermediate CA, O=*"],"spiffe_id":["spiffe://demo.example.org/*"],"verifier":"client_cert"}`
	if len(verifiers) != 1 || verifiers[0] != wantVerifier {
		t.Errorf("verifiers:\n got  %q\n want %q", verifiers, wantVerifier)
	}
	if want := `client_cert({'spiffe_id': 'spiffe://demo.example.org/ns/web/*'})`; len(exprs) != 1 || exprs[0] != want {
		t.Errorf("expressions: %q, want %q", exprs, want)
	}

	for _, bad := range []struct{ from, to, want string }{
		{"spiffe_id spiffe://demo.example.org/*", "spiffe_id spiffe://demo.example.org/ns/../x",
			`spiffe_id "spiffe://demo.example.org/ns/../x"`},
		{"@partner client_cert san_dns", "@partner client_cert san_dnz",
			`unknown field "san_dnz"`},
		{"min_remaining_validity 7d", "min_remaining_validity 7 days",
			"min_remaining_validity takes exactly one duration"},
		{"'spiffe_id': 'spiffe://demo.example.org/ns/web/*'", "'spiffe_id': 'spiffe://demo.example.org/ns/web/'",
			"empty path segment"},
	} {
		cfg := strings.Replace(site, bad.from, bad.to, 1)
		if cfg == site {
			t.Fatalf("mutation %q not applied", bad.from)
		}
		_, stderr, err := adapt(cfg)
		if err == nil || !strings.Contains(stderr, bad.want) {
			t.Errorf("%q: adapt err=%v, stderr:\n%s\nwant it to contain %q", bad.to, err, stderr, bad.want)
		}
	}
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
