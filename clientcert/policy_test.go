package clientcert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

func TestPolicyEvaluate(t *testing.T) {
	f := getFixtures(t)
	sum := sha256.Sum256(f.partner.Cert.Raw)
	fpLower := hex.EncodeToString(sum[:])
	var colons []string
	for _, b := range sum {
		colons = append(colons, fmt.Sprintf("%02X", b))
	}
	fpColons := strings.Join(colons, ":")

	type want struct {
		leaf   *pki.Leaf
		failed string // "" = matches
	}
	for _, tc := range []struct {
		name   string
		policy Policy
		cases  []want
	}{
		{"empty policy matches any certificate", Policy{},
			[]want{{f.payments, ""}, {f.partner, ""}, {f.httpsOnly, ""}}},
		{"spiffe prefix", Policy{SPIFFEID: []string{"spiffe://prod.example.org/ns/payments/*"}},
			[]want{{f.payments, ""}, {f.rsaPayments, ""}, {f.nearExpiry, ""}, {f.web, fieldSPIFFEID}, {f.partner, fieldSPIFFEID}, {f.httpsOnly, fieldSPIFFEID}}},
		{"spiffe alternatives", Policy{SPIFFEID: []string{"spiffe://prod.example.org/ns/payments/*", "spiffe://prod.example.org/ns/web/sa/frontend"}},
			[]want{{f.payments, ""}, {f.web, ""}}},
		{"spiffe other trust domain", Policy{SPIFFEID: []string{"spiffe://staging.example.org/*"}},
			[]want{{f.payments, fieldSPIFFEID}}},
		{"two SPIFFE URIs are not an SVID", Policy{SPIFFEID: []string{"spiffe://prod.example.org/*"}},
			[]want{{f.twoSPIFFE, fieldSPIFFEID}, {f.spiffeAndHTTPS, fieldSPIFFEID}}},
		{"spiffe issuer and subject together", Policy{
			SPIFFEID: []string{"spiffe://prod.example.org/ns/payments/*"},
			Issuer:   []string{"CN=Payments Issuing CA"},
			Subject:  []string{"CN=payments-*, OU=payments"},
		}, []want{{f.payments, ""}, {f.rsaPayments, fieldSubject}, {f.web, fieldIssuer}}},
		{"issuer alternatives", Policy{Issuer: []string{"CN=Web Issuing CA", "CN=Example Root CA"}},
			[]want{{f.web, ""}, {f.partner, ""}, {f.payments, fieldIssuer}}},
		{"issuer attribute from the intermediate", Policy{Issuer: []string{"O=caddy-tlsresume test PKI, CN=* Issuing CA"}},
			[]want{{f.web, ""}, {f.payments, ""}, {f.partner, fieldIssuer}}},
		{"subject multi-valued O and escaped comma", Policy{Subject: []string{`O=Example\, Inc.`}},
			[]want{{f.payments, ""}, {f.web, fieldSubject}}},
		{"subject C, DC and OID", Policy{Subject: []string{"c=US, dc=example, 2.5.4.11=pay*"}},
			[]want{{f.payments, ""}, {f.web, fieldSubject}}},
		{"subject case-sensitive", Policy{Subject: []string{"CN=Payments-API"}},
			[]want{{f.payments, fieldSubject}}},
		{"subject missing attribute", Policy{Subject: []string{"OU=*"}},
			[]want{{f.payments, ""}, {f.web, fieldSubject}}},
		{"san_dns wildcard one label", Policy{SANDNS: []string{"*.partner.example.com"}},
			[]want{{f.partner, ""}, {f.payments, fieldSANDNS}}},
		{"san_dns case-insensitive", Policy{SANDNS: []string{"PARTNER.Example.com"}},
			[]want{{f.partner, ""}}},
		{"san_dns no deeper label", Policy{SANDNS: []string{"*.com", "*.*.partner.example.com"}},
			[]want{{f.partner, fieldSANDNS}}},
		{"san_email", Policy{SANEmail: []string{"*@partner.example.com"}},
			[]want{{f.partner, ""}, {f.payments, fieldSANEmail}}},
		{"san_ip v4 CIDR", Policy{SANIP: []string{"10.0.0.0/8"}},
			[]want{{f.partner, ""}, {f.payments, fieldSANIP}}},
		{"san_ip v6 CIDR", Policy{SANIP: []string{"2001:db8::/32"}},
			[]want{{f.partner, ""}}},
		{"san_ip single address and mapped prefix", Policy{SANIP: []string{"192.0.2.1", "::ffff:10.1.2.0/120"}},
			[]want{{f.partner, ""}}},
		{"san_ip miss", Policy{SANIP: []string{"10.1.3.0/24", "2001:db9::/32"}},
			[]want{{f.partner, fieldSANIP}}},
		{"san_uri exact spelling", Policy{SANURI: []string{"https://payments.example.com/*"}},
			[]want{{f.httpsOnly, ""}, {f.spiffeAndHTTPS, ""}, {f.payments, fieldSANURI}}},
		{"san_uri sees non-SPIFFE-conformant URIs verbatim", Policy{SANURI: []string{"spiffe://prod.example.org/ns/payments/sa/%61pi"}},
			[]want{{f.badSPIFFE["percent"], ""}, {f.payments, fieldSANURI}}},
		{"fingerprint lower-case hex", Policy{Fingerprint: []string{fpLower}},
			[]want{{f.partner, ""}, {f.payments, fieldFingerprint}}},
		{"fingerprint upper-case with colons", Policy{Fingerprint: []string{fpColons}},
			[]want{{f.partner, ""}, {f.web, fieldFingerprint}}},
		{"serial decimal", Policy{Serial: []string{"4099"}},
			[]want{{f.partner, ""}, {f.payments, fieldSerial}}},
		{"serial hex and colon forms", Policy{Serial: []string{"0x1003"}},
			[]want{{f.partner, ""}}},
		{"serial colon form", Policy{Serial: []string{"10:03"}},
			[]want{{f.partner, ""}}},
		{"min remaining validity", Policy{MinRemainingValidity: caddy.Duration(24 * time.Hour)},
			[]want{{f.nearExpiry, fieldMinRemainingValidity}, {f.payments, fieldMinRemainingValidity}}},
		{"min remaining validity short", Policy{MinRemainingValidity: caddy.Duration(time.Hour)},
			[]want{{f.nearExpiry, ""}, {f.payments, ""}}},
		{"all fields AND", Policy{
			Subject: []string{"CN=partner"}, Issuer: []string{"CN=Example Root CA"},
			SANDNS: []string{"api.partner.example.com"}, SANEmail: []string{"ops@*"},
			SANIP: []string{"10.1.2.3"}, Fingerprint: []string{fpLower}, Serial: []string{"4099"},
			MinRemainingValidity: caddy.Duration(time.Hour),
		}, []want{{f.partner, ""}, {f.payments, fieldSerial}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.policy.compile()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.cases {
				got := c.evaluate(w.leaf.Cert, time.Now())
				if got != w.failed {
					t.Errorf("%s (%v): failed field %q, want %q", w.leaf.Cert.Subject.CommonName, w.leaf.Cert.URIs, got, w.failed)
				}
			}
		})
	}
}

// TestMinRemainingValidityBoundary checks the comparison with an injected
// clock: a certificate valid for exactly the minimum still matches.
func TestMinRemainingValidityBoundary(t *testing.T) {
	f := getFixtures(t)
	c, err := (&Policy{MinRemainingValidity: caddy.Duration(time.Hour)}).compile()
	if err != nil {
		t.Fatal(err)
	}
	notAfter := f.nearExpiry.Cert.NotAfter
	if got := c.evaluate(f.nearExpiry.Cert, notAfter.Add(-time.Hour)); got != "" {
		t.Errorf("exactly one hour left: %q", got)
	}
	if got := c.evaluate(f.nearExpiry.Cert, notAfter.Add(-time.Hour+time.Nanosecond)); got != fieldMinRemainingValidity {
		t.Errorf("just under one hour left: %q", got)
	}
	if got := c.evaluate(f.nearExpiry.Cert, notAfter.Add(time.Minute)); got != fieldMinRemainingValidity {
		t.Errorf("expired: %q", got)
	}
}

// TestInvalidSPIFFEIDsNeverMatch gives every malformed SPIFFE URI a pattern
// that would match it if it were taken at face value.
func TestInvalidSPIFFEIDsNeverMatch(t *testing.T) {
	f := getFixtures(t)
	c, err := (&Policy{SPIFFEID: []string{"spiffe://prod.example.org/*"}}).compile()
	if err != nil {
		t.Fatal(err)
	}
	if len(f.badSPIFFE) == 0 {
		t.Fatal("no malformed SPIFFE certificates generated")
	}
	for name, leaf := range f.badSPIFFE {
		if got := c.evaluate(leaf.Cert, time.Now()); got != fieldSPIFFEID {
			t.Errorf("%s (%s): spiffe_id matched", name, leaf.Cert.URIs[0])
		}
	}
}

func TestPolicyCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		policy      Policy
		field, want string
	}{
		{Policy{Subject: []string{"CN"}}, `subject "CN"`, "not ATTRIBUTE=VALUE"},
		{Policy{Subject: []string{"XX=a"}}, `subject "XX=a"`, "unknown attribute type"},
		{Policy{Subject: []string{"CN="}}, `subject "CN="`, "empty value"},
		{Policy{Subject: []string{"CN=a,,O=b"}}, `subject "CN=a,,O=b"`, "empty attribute term"},
		{Policy{Issuer: []string{"1.x=a"}}, `issuer "1.x=a"`, "not a dotted OID"},
		{Policy{Issuer: []string{`CN=a\`}}, `issuer "CN=a\\"`, "unfinished escape"},
		{Policy{SANDNS: []string{`*.example.com\`}}, `san_dns "*.example.com\\"`, "unfinished escape"},
		{Policy{SANDNS: []string{""}}, `san_dns ""`, "empty value"},
		{Policy{SANURI: []string{" "}}, `san_uri " "`, "empty value"},
		{Policy{SANIP: []string{"10.0.0.0/33"}}, `san_ip "10.0.0.0/33"`, "CIDR"},
		{Policy{SANIP: []string{"example.com"}}, `san_ip "example.com"`, "neither an IP"},
		{Policy{SANIP: []string{"fe80::1%eth0"}}, `san_ip "fe80::1%eth0"`, "zones"},
		{Policy{SPIFFEID: []string{"spiffe://*.example.org/x"}}, `spiffe_id "spiffe://*.example.org/x"`, "exact"},
		{Policy{SPIFFEID: []string{"spiffe://example.org/a/../b"}}, `spiffe_id "spiffe://example.org/a/../b"`, `".."`},
		{Policy{SPIFFEID: []string{"https://example.org/x"}}, `spiffe_id "https://example.org/x"`, "spiffe://"},
		{Policy{Fingerprint: []string{"abcd"}}, `fingerprint "abcd"`, "64 hex digits"},
		{Policy{Fingerprint: []string{strings.Repeat("zz", 32)}}, `fingerprint "zzzz`, "invalid byte"},
		{Policy{Fingerprint: []string{strings.Repeat("aa:", 31) + "aaa"}}, `fingerprint "aa:`, "two hex digits"},
		{Policy{Serial: []string{"12ab"}}, `serial "12ab"`, "decimal"},
		{Policy{Serial: []string{"+5"}}, `serial "+5"`, "decimal"},
		{Policy{Serial: []string{"0x"}}, `serial "0x"`, "hexadecimal"},
		{Policy{Serial: []string{"1:02"}}, `serial "1:02"`, "two-digit"},
		{Policy{Serial: []string{"0x" + strings.Repeat("ff", 65)}}, `serial "0xffff`, "20 octets"},
		{Policy{MinRemainingValidity: caddy.Duration(-time.Hour)}, `min_remaining_validity "-1h0m0s"`, "negative"},
		{Policy{SPIFFEID: []string{}}, "spiffe_id is an empty list", "omit the field"},
	} {
		_, err := tc.policy.compile()
		if err == nil {
			t.Errorf("%+v compiled; want an error", tc.policy)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, tc.field) || !strings.Contains(msg, tc.want) {
			t.Errorf("error %q; want it to name %s and say %q", msg, tc.field, tc.want)
		}
	}
}

// TestPolicySerialSpellings: the serial field takes what the revoke admin
// API takes, including the serials of non-conforming certificates Go can
// parse (negative, longer than 20 octets).
func TestPolicySerialSpellings(t *testing.T) {
	long := "0x" + strings.Repeat("ff", 21)
	c, err := (&Policy{Serial: []string{"-5", "-0x05", "-00:05", long}}).compile()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := new(big.Int).SetString(long[2:], 16)
	if len(c.serials) != 4 || c.serials[0].Int64() != -5 || c.serials[1].Int64() != -5 ||
		c.serials[2].Int64() != -5 || c.serials[3].Cmp(want) != 0 {
		t.Errorf("serials = %v", c.serials)
	}
}

func TestPolicyCompileReportsEveryMistake(t *testing.T) {
	_, err := (&Policy{SANIP: []string{"x"}, Serial: []string{"y"}}).compile()
	if err == nil || !strings.Contains(err.Error(), "san_ip") || !strings.Contains(err.Error(), "serial") {
		t.Fatalf("got %v; want both mistakes reported", err)
	}
}

func TestEvaluateDoesNotAllocate(t *testing.T) {
	f := getFixtures(t)
	sum := sha256.Sum256(f.partner.Cert.Raw)
	c, err := (&Policy{
		SPIFFEID:             []string{"spiffe://prod.example.org/ns/payments/*"},
		Issuer:               []string{"CN=Payments Issuing CA, O=caddy-tlsresume test PKI"},
		Subject:              []string{"CN=payments-*"},
		SANURI:               []string{"spiffe://*"},
		SANIP:                []string{"10.0.0.0/8"},
		Fingerprint:          []string{hex.EncodeToString(sum[:])},
		MinRemainingValidity: caddy.Duration(time.Hour),
	}).compile()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, leaf := range []*pki.Leaf{f.payments, f.partner} {
		if n := testing.AllocsPerRun(100, func() { c.evaluate(leaf.Cert, now) }); n != 0 {
			t.Errorf("evaluate(%s) allocates %v times", leaf.Cert.Subject.CommonName, n)
		}
	}
	// every field up to the fingerprint is evaluated for this one
	c2, err := (&Policy{SANDNS: []string{"*.partner.example.com"}, SANEmail: []string{"ops@*"},
		Serial: []string{"4099"}, Fingerprint: []string{hex.EncodeToString(sum[:])}}).compile()
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.evaluate(f.partner.Cert, now); got != "" {
		t.Fatalf("partner: %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { c2.evaluate(f.partner.Cert, now) }); n != 0 {
		t.Errorf("evaluate(partner) allocates %v times", n)
	}
}
