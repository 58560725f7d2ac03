package tlsresume

import (
	"crypto/tls"
	"crypto/x509"
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

func TestRealmDigest(t *testing.T) {
	a, _ := pki.NewRoot("CA A", pki.ECDSAP256)
	b, _ := pki.NewRoot("CA B", pki.ECDSAP256)
	pool := func(cas ...*pki.Issuer) *x509.CertPool {
		p := x509.NewCertPool()
		for _, ca := range cas {
			p.AddCert(ca.Cert)
		}
		return p
	}
	policy := func(auth tls.ClientAuthType, p *x509.CertPool, mode string, leaves ...string) *caddytls.ConnectionPolicy {
		pol := &caddytls.ConnectionPolicy{TLSConfig: &tls.Config{ClientAuth: auth, ClientCAs: p}}
		if mode != "" || len(leaves) > 0 {
			pol.ClientAuthentication = &caddytls.ClientAuthentication{Mode: mode}
			//lint:ignore SA1019 the deprecated pin field is still enforced by Caddy
			pol.ClientAuthentication.TrustedLeafCerts = leaves
		}
		return pol
	}
	base := realmDigest(policy(tls.RequireAndVerifyClientCert, pool(a), "require_and_verify"))

	same := []struct {
		name string
		pol  *caddytls.ConnectionPolicy
	}{
		{"identical config on another node", policy(tls.RequireAndVerifyClientCert, pool(a), "require_and_verify")},
	}
	for _, tc := range same {
		if realmDigest(tc.pol) != base {
			t.Errorf("%s: digest differs", tc.name)
		}
	}
	noAuthA, noAuthB := policy(tls.NoClientCert, nil, ""), policy(tls.NoClientCert, nil, "")
	if realmDigest(noAuthA) != realmDigest(noAuthB) {
		t.Error("no client auth: digest not stable")
	}
	if realmDigest(policy(tls.RequireAndVerifyClientCert, pool(a, b), "")) != realmDigest(policy(tls.RequireAndVerifyClientCert, pool(b, a), "")) {
		t.Error("CA order changed the digest")
	}

	different := []struct {
		name string
		pol  *caddytls.ConnectionPolicy
	}{
		{"other CA", policy(tls.RequireAndVerifyClientCert, pool(b), "require_and_verify")},
		{"extra CA", policy(tls.RequireAndVerifyClientCert, pool(a, b), "require_and_verify")},
		{"verify if given", policy(tls.VerifyClientCertIfGiven, pool(a), "verify_if_given")},
		{"no client auth", policy(tls.NoClientCert, nil, "")},
		{"leaf pinned", policy(tls.RequireAndVerifyClientCert, pool(a), "require_and_verify", "MIIBpin")},
		{"mode spelled out vs default", policy(tls.RequireAndVerifyClientCert, pool(a), "")},
	}
	seen := map[[32]byte]string{base: "base"}
	for _, tc := range different {
		d := realmDigest(tc.pol)
		if prev, dup := seen[d]; dup {
			t.Errorf("%s: same realm as %s", tc.name, prev)
		}
		seen[d] = tc.name
	}
}
