package clientcert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

func newVerifier(t testing.TB, p Policy) *Verifier {
	t.Helper()
	v := &Verifier{Policy: p}
	if err := v.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerifierInHandshake(t *testing.T) {
	f := getFixtures(t)
	payments := Policy{SPIFFEID: []string{"spiffe://prod.example.org/ns/payments/*"}, Issuer: []string{"CN=Payments Issuing CA"}}
	for _, tc := range []struct {
		name      string
		mode      tls.ClientAuthType
		client    *pki.Leaf
		policy    Policy
		wantField string // "" = admitted
		wantMsg   string
	}{
		{"matching client admitted", tls.RequireAndVerifyClientCert, f.payments, payments, "", ""},
		{"wrong SPIFFE ID refused", tls.RequireAndVerifyClientCert, f.web, Policy{SPIFFEID: payments.SPIFFEID}, fieldSPIFFEID,
			`spiffe_id does not match any of ["spiffe://prod.example.org/ns/payments/*"]`},
		{"wrong issuer refused", tls.RequireAndVerifyClientCert, f.web, Policy{Issuer: payments.Issuer}, fieldIssuer, "issuer does not match"},
		{"near expiry refused", tls.RequireAndVerifyClientCert, f.nearExpiry, Policy{MinRemainingValidity: caddy.Duration(24 * 3600e9)}, fieldMinRemainingValidity, "min_remaining_validity"},
		{"no certificate refused", tls.VerifyClientCertIfGiven, nil, payments, "-", "no client certificate"},
		{"unverified refused", tls.RequireAnyClientCert, f.payments, payments, "-", "not verified"},
		{"unverified allowed", tls.RequireAnyClientCert, f.payments, Policy{SPIFFEID: payments.SPIFFEID, AllowUnverified: true}, "", ""},
		{"unverified allowed, wrong ID", tls.RequireAnyClientCert, f.web, Policy{SPIFFEID: payments.SPIFFEID, AllowUnverified: true}, fieldSPIFFEID, "spiffe_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, tc.policy)
			_, err := handshake(t, f, tc.mode, tc.client, nil, caddyVerifyConnection(v))
			if tc.wantField == "" {
				if err != nil {
					t.Fatalf("handshake refused: %v", err)
				}
				return
			}
			var refusal *refusalError
			if !errors.As(err, &refusal) {
				t.Fatalf("handshake error %v; want a refusalError", err)
			}
			if tc.wantField != "-" && refusal.Field != tc.wantField {
				t.Errorf("refused on %q, want %q", refusal.Field, tc.wantField)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("error %q does not say %q", err, tc.wantMsg)
			}
		})
	}
}

// TestVerifierOnResumption checks that the verifier runs again when a
// session resumes (Go calls VerifyConnection on resumed handshakes), so a
// session established under one policy cannot resume under a stricter one.
func TestVerifierOnResumption(t *testing.T) {
	f := getFixtures(t)
	cache := tls.NewLRUClientSessionCache(4)
	lax := newVerifier(t, Policy{SPIFFEID: []string{"spiffe://prod.example.org/*"}})
	strict := newVerifier(t, Policy{SPIFFEID: []string{"spiffe://prod.example.org/ns/web/*"}})

	var sawResumed []bool
	record := func(v *Verifier) func(tls.ConnectionState) error {
		inner := caddyVerifyConnection(v)
		return func(cs tls.ConnectionState) error {
			sawResumed = append(sawResumed, cs.DidResume)
			return inner(cs)
		}
	}
	if _, err := handshake(t, f, tls.RequireAndVerifyClientCert, f.payments, cache, record(lax)); err != nil {
		t.Fatal(err)
	}
	cs, err := handshake(t, f, tls.RequireAndVerifyClientCert, f.payments, cache, record(lax))
	if err != nil || !cs.DidResume {
		t.Fatalf("second handshake: resumed=%v err=%v", cs.DidResume, err)
	}
	_, err = handshake(t, f, tls.RequireAndVerifyClientCert, f.payments, cache, record(strict))
	var refusal *refusalError
	if !errors.As(err, &refusal) || refusal.Field != fieldSPIFFEID {
		t.Fatalf("resumption under the strict policy: %v; want a spiffe_id refusal", err)
	}
	if want := []bool{false, true, true}; fmt.Sprint(sawResumed) != fmt.Sprint(want) {
		t.Errorf("verifier saw DidResume %v, want %v", sawResumed, want)
	}
}

func TestVerifierDoesNotAllocate(t *testing.T) {
	f := getFixtures(t)
	v := newVerifier(t, Policy{
		SPIFFEID: []string{"spiffe://prod.example.org/ns/payments/*"},
		Issuer:   []string{"CN=Payments Issuing CA"},
	})
	chains := f.verifiedChains(t, f.payments)
	raw := [][]byte{f.payments.Cert.Raw, f.paymentsCA.Cert.Raw}
	if err := v.VerifyClientCertificate(raw, chains); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() { _ = v.VerifyClientCertificate(raw, chains) }); n != 0 {
		t.Errorf("admitting allocates %v times", n)
	}
	webChains := f.verifiedChains(t, f.web)
	webRaw := [][]byte{f.web.Cert.Raw}
	if err := v.VerifyClientCertificate(webRaw, webChains); err == nil {
		t.Fatal("web admitted")
	}
	if n := testing.AllocsPerRun(200, func() { _ = v.VerifyClientCertificate(webRaw, webChains) }); n != 0 {
		t.Errorf("refusing allocates %v times", n)
	}
}

func TestVerifierWithoutChains(t *testing.T) {
	f := getFixtures(t)
	v := newVerifier(t, Policy{})
	if err := v.VerifyClientCertificate(nil, nil); err == nil || !strings.Contains(err.Error(), "no client certificate") {
		t.Errorf("no certificate: %v", err)
	}
	if err := v.VerifyClientCertificate([][]byte{f.payments.Cert.Raw}, nil); err == nil || !strings.Contains(err.Error(), "allow_unverified") {
		t.Errorf("unverified: %v", err)
	}
	if err := v.VerifyClientCertificate(nil, [][]*x509.Certificate{{}}); err == nil {
		t.Error("an empty verified chain was accepted")
	}
	open := newVerifier(t, Policy{AllowUnverified: true})
	if err := open.VerifyClientCertificate([][]byte{[]byte("not DER")}, nil); err == nil || !strings.Contains(err.Error(), "parsing client certificate") {
		t.Errorf("garbage certificate: %v", err)
	}
	if err := open.VerifyClientCertificate([][]byte{f.payments.Cert.Raw}, nil); err != nil {
		t.Errorf("unverified allowed: %v", err)
	}
}
