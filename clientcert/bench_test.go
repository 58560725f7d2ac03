package clientcert

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// typicalPolicy is the policy of the stated budget: a SPIFFE glob and an
// issuer name.
var typicalPolicy = Policy{
	SPIFFEID: []string{"spiffe://prod.example.org/ns/payments/*"},
	Issuer:   []string{"CN=Payments Issuing CA"},
}

// BenchmarkMatchTypical measures the HTTP matcher on a request whose
// verified client certificate satisfies a SPIFFE glob plus issuer policy.
// Budget: under 200 ns and 0 allocs/op.
func BenchmarkMatchTypical(b *testing.B) {
	f := getFixtures(b)
	m := newMatcher(b, typicalPolicy)
	cs := f.state(b, f.payments)
	r := requestWith(&cs)
	if !m.Match(r) {
		b.Fatal("no match")
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Match(r)
	}
}

// BenchmarkMatchTypicalMiss is the same policy against a client from
// another namespace and issuer (it fails on the issuer, checked first).
func BenchmarkMatchTypicalMiss(b *testing.B) {
	f := getFixtures(b)
	m := newMatcher(b, typicalPolicy)
	cs := f.state(b, f.web)
	r := requestWith(&cs)
	if m.Match(r) {
		b.Fatal("match")
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Match(r)
	}
}

// BenchmarkVerifyTypical measures the handshake verifier for the typical
// policy, admitting a client.
func BenchmarkVerifyTypical(b *testing.B) {
	f := getFixtures(b)
	v := newVerifier(b, typicalPolicy)
	chains := f.verifiedChains(b, f.payments)
	raw := [][]byte{f.payments.Cert.Raw, f.paymentsCA.Cert.Raw}
	if err := v.VerifyClientCertificate(raw, chains); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = v.VerifyClientCertificate(raw, chains)
	}
}

// BenchmarkMatchEveryField evaluates a policy using every field, the
// SHA-256 fingerprint (about half the cost) included.
func BenchmarkMatchEveryField(b *testing.B) {
	f := getFixtures(b)
	sum := sha256.Sum256(f.partner.Cert.Raw)
	m := newMatcher(b, Policy{
		Subject: []string{"CN=partner"}, Issuer: []string{"CN=Example Root CA"},
		SANDNS: []string{"*.partner.example.com"}, SANEmail: []string{"ops@*"},
		SANIP: []string{"10.0.0.0/8"}, SANURI: []string{"https://*"},
		Fingerprint: []string{hex.EncodeToString(sum[:])}, Serial: []string{"4099"},
		MinRemainingValidity: caddy.Duration(time.Hour),
	})
	cs := f.state(b, f.partner)
	r := requestWith(&cs)
	m.Match(r) // no URI SAN: fails on san_uri, after every cheaper field
	b.ReportAllocs()
	for b.Loop() {
		m.Match(r)
	}
}
