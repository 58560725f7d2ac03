package clientcert

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	fp := strings.Repeat("AB:", 31) + "AB"
	for _, tc := range []struct {
		name  string
		input string
		want  Policy
	}{
		{"one-liner", `client_cert spiffe_id spiffe://prod.example.org/ns/payments/* spiffe://prod.example.org/ns/web/*`,
			Policy{SPIFFEID: []string{"spiffe://prod.example.org/ns/payments/*", "spiffe://prod.example.org/ns/web/*"}}},
		{"one-liner subject", `client_cert subject CN=api-* O=Example`,
			Policy{Subject: []string{"CN=api-*, O=Example"}}},
		{"empty block", `client_cert {
		}`, Policy{}},
		{"bare", `client_cert`, Policy{}},
		{"block", `client_cert {
			subject CN=api-* O=Example
			subject "CN=admin, OU=ops"
			issuer "CN=Payments Issuing CA"
			san_dns *.example.com api.example.org
			san_uri https://example.com/*
			san_email *@example.com
			san_ip 10.0.0.0/8 2001:db8::/32 192.0.2.7
			spiffe_id spiffe://prod.example.org/ns/payments/*
			spiffe_id spiffe://prod.example.org/ns/web/*
			fingerprint ` + fp + `
			serial 4099 0x1003 10:03
			min_remaining_validity 7d
			allow_unverified
		}`, Policy{
			Subject:              []string{"CN=api-*, O=Example", "CN=admin, OU=ops"},
			Issuer:               []string{"CN=Payments Issuing CA"},
			SANDNS:               []string{"*.example.com", "api.example.org"},
			SANURI:               []string{"https://example.com/*"},
			SANEmail:             []string{"*@example.com"},
			SANIP:                []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"},
			SPIFFEID:             []string{"spiffe://prod.example.org/ns/payments/*", "spiffe://prod.example.org/ns/web/*"},
			Fingerprint:          []string{fp},
			Serial:               []string{"4099", "0x1003", "10:03"},
			MinRemainingValidity: caddy.Duration(7 * 24 * time.Hour),
			AllowUnverified:      true,
		}},
		{"one-liner plus block", `client_cert san_dns a.example.com {
			issuer CN=X
		}`, Policy{SANDNS: []string{"a.example.com"}, Issuer: []string{"CN=X"}}},
		{"matcher named twice in one set", "client_cert san_dns a.example.com\nclient_cert san_dns b.example.com",
			Policy{SANDNS: []string{"a.example.com", "b.example.com"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m MatchClientCert
			if err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Policy, tc.want) {
				t.Errorf("matcher got\n%+v\nwant\n%+v", m.Policy, tc.want)
			}
			var v Verifier
			if err := v.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v.Policy, tc.want) {
				t.Errorf("verifier got\n%+v\nwant\n%+v", v.Policy, tc.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ input, want string }{
		{"client_cert {\n\tspiffe spiffe://x/y\n}", `unknown field "spiffe"`},
		{"client_cert bogus value", `unknown field "bogus"`},
		{"client_cert {\n\tsan_dns\n}", "san_dns needs at least one value"},
		{"client_cert {\n\tsubject\n}", "subject needs at least one ATTRIBUTE=VALUE term"},
		{"client_cert {\n\tmin_remaining_validity\n}", "exactly one duration"},
		{"client_cert {\n\tmin_remaining_validity 1h 2h\n}", "exactly one duration"},
		{"client_cert {\n\tmin_remaining_validity soon\n}", `min_remaining_validity "soon"`},
		{"client_cert {\n\tmin_remaining_validity 0s\n}", "must be positive"},
		{"client_cert {\n\tmin_remaining_validity 1h\n\tmin_remaining_validity 2h\n}", "set twice"},
		{"client_cert {\n\tallow_unverified yes\n}", "takes no value"},
		{"client_cert {\n\tspiffe_id spiffe://Prod.example.org/*\n}", `spiffe_id "spiffe://Prod.example.org/*"`},
		{"client_cert {\n\tspiffe_id spiffe://prod.example.org/a//b\n}", "empty path segment"},
		{"client_cert {\n\tsan_ip 10.0.0.0/40\n}", `san_ip "10.0.0.0/40"`},
		{"client_cert {\n\tfingerprint 1234\n}", `fingerprint "1234"`},
		{"client_cert {\n\tserial 0xZZ\n}", `serial "0xZZ"`},
		{"client_cert {\n\tsubject CN=a XX=b\n}", `unknown attribute type "XX"`},
		{"client_cert {\n\tsan_dns `a\\`\n}", "unfinished escape"},
		{"client_cert {\n\tsubject `O=Example\\, Inc.` CN=x\n\tsubject CN=a,,O=b\n}", "Testfile:3"},
	} {
		var m MatchClientCert
		err := m.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v; want it to contain %q", tc.input, err, tc.want)
		}
	}
}

func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, s := range []string{
		"client_cert spiffe_id spiffe://prod.example.org/ns/payments/*",
		"client_cert {\n\tsubject CN=api-* O=Example\n\tissuer \"CN=A, O=B\"\n}",
		"client_cert {\n\tsan_dns *.example.com\n\tsan_ip 10.0.0.0/8\n\tserial 0x10 10:03 7\n}",
		"client_cert {\n\tfingerprint " + strings.Repeat("ab", 32) + "\n\tmin_remaining_validity 7d\n\tallow_unverified\n}",
		"client_cert {\n\tsan_uri https://*\n\tsan_email *@x\n}",
		"client_cert {\n\t{\n}", "client_cert }", "client_cert {\nsubject {\n}\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		var m MatchClientCert
		if err := m.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		// What the Caddyfile accepts must survive JSON and provision.
		raw, err := json.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		var back MatchClientCert
		if err := caddy.StrictUnmarshalJSON(raw, &back); err != nil {
			t.Fatalf("JSON %s does not decode: %v", raw, err)
		}
		if err := back.Provision(caddy.Context{}); err != nil {
			t.Fatalf("accepted Caddyfile %q gives JSON %s that does not provision: %v", input, raw, err)
		}
	})
}
