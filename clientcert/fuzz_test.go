package clientcert

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"testing"
	"time"
)

// FuzzPolicyValue compiles one value for each field, as configuration gives
// it, and evaluates what compiles against the fixture certificates: no
// value may crash the compiler or the evaluation.
func FuzzPolicyValue(f *testing.F) {
	for _, s := range []struct{ field, value string }{
		{fieldSubject, "CN=api-*, O=Example\\, Inc."}, {fieldIssuer, "2.5.4.3=*, dc=x"},
		{fieldSANDNS, "*.example.com"}, {fieldSANURI, "https://*"}, {fieldSANEmail, "*@x"},
		{fieldSANIP, "10.0.0.0/8"}, {fieldSANIP, "::ffff:10.0.0.0/104"}, {fieldSANIP, "fe80::1%eth0"},
		{fieldSPIFFEID, "spiffe://prod.example.org/ns/*"}, {fieldFingerprint, "AB:cd:" + "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00"},
		{fieldSerial, "0x1003"}, {fieldSerial, "10:03"}, {fieldMinRemainingValidity, "7d"},
		{fieldAllowUnverified, "true"},
	} {
		f.Add(s.field, s.value)
	}
	fx := getFixtures(f)
	leaves := []*x509.Certificate{fx.payments.Cert, fx.partner.Cert, fx.web.Cert, fx.twoSPIFFE.Cert}
	for _, l := range fx.badSPIFFE {
		leaves = append(leaves, l.Cert)
	}
	f.Fuzz(func(t *testing.T, field, value string) {
		var p Policy
		if err := p.add(field, []string{value}); err != nil {
			return
		}
		c, err := p.compile()
		if err != nil {
			return
		}
		for _, leaf := range leaves {
			c.evaluate(leaf, time.Now())
		}
	})
}

// FuzzSANExtension feeds arbitrary bytes as a certificate's
// subjectAltName extension to the URI SAN reader.
func FuzzSANExtension(f *testing.F) {
	fx := getFixtures(f)
	for _, l := range []*x509.Certificate{fx.payments.Cert, fx.twoSPIFFE.Cert, fx.spiffeAndHTTPS.Cert, fx.partner.Cert} {
		for _, ext := range l.Extensions {
			if oidEqual(ext.Id, oidSubjectAltName) {
				f.Add(ext.Value)
			}
		}
	}
	c, err := (&Policy{SPIFFEID: []string{"spiffe://prod.example.org/*"}, SANURI: []string{"*"}}).compile()
	if err != nil {
		f.Fatal(err)
	}
	one := []*url.URL{{Scheme: "spiffe", Host: "prod.example.org", Path: "/x"}}
	f.Fuzz(func(t *testing.T, value []byte) {
		cert := &x509.Certificate{URIs: one}
		cert.Extensions = []pkix.Extension{{Id: oidSubjectAltName, Value: value}}
		c.matchSPIFFE(cert)
		c.matchURI(cert)
		it := newURISANs(cert)
		for n := 0; ; n++ {
			if _, ok := it.next(); !ok {
				break
			}
			if n > len(value) {
				t.Fatal("the URI SAN iterator does not terminate")
			}
		}
	})
}
