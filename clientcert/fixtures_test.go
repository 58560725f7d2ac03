package clientcert

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// fixtures is a PKI built once per test binary: a root, two issuing
// intermediates and leaves covering every field of the policy.
type fixtures struct {
	root              *pki.Issuer
	server            *pki.Leaf // localhost
	paymentsCA, webCA *pki.Issuer
	payments          *pki.Leaf // SPIFFE payments ID, rich subject, from paymentsCA
	web               *pki.Leaf // SPIFFE web ID, from webCA
	partner           *pki.Leaf // DNS, email, IP SANs and a fixed serial, from root directly
	nearExpiry        *pki.Leaf // payments ID, expires in 2 hours
	twoSPIFFE         *pki.Leaf // two SPIFFE URI SANs: not an SVID
	spiffeAndHTTPS    *pki.Leaf // a SPIFFE ID and another URI: not an SVID
	httpsOnly         *pki.Leaf // one non-SPIFFE URI SAN
	badSPIFFE         map[string]*pki.Leaf
	rsaPayments       *pki.Leaf // like payments, RSA key
	partnerSerial     *big.Int
}

var (
	fixOnce sync.Once
	fix     *fixtures
	fixErr  error
)

const (
	paymentsID = "spiffe://prod.example.org/ns/payments/sa/api"
	webID      = "spiffe://prod.example.org/ns/web/sa/frontend"
)

func getFixtures(t testing.TB) *fixtures {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = buildFixtures() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func buildFixtures() (*fixtures, error) {
	f := &fixtures{badSPIFFE: map[string]*pki.Leaf{}}
	var err error
	if f.root, err = pki.NewRoot("Example Root CA", pki.ECDSAP256); err != nil {
		return nil, err
	}
	if f.paymentsCA, err = f.root.NewIntermediate("Payments Issuing CA", pki.ECDSAP256); err != nil {
		return nil, err
	}
	if f.webCA, err = f.root.NewIntermediate("Web Issuing CA", pki.ECDSAP256); err != nil {
		return nil, err
	}
	if f.server, err = f.root.IssueServer(pki.Options{CommonName: "localhost", DNSNames: []string{"localhost"}}); err != nil {
		return nil, err
	}
	oidDC := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
	if f.payments, err = f.paymentsCA.IssueClient(pki.Options{
		Subject: &pkix.Name{
			CommonName:         "payments-api",
			Organization:       []string{"Example Corp", "Example, Inc."},
			OrganizationalUnit: []string{"payments"},
			Country:            []string{"US"},
			ExtraNames:         []pkix.AttributeTypeAndValue{{Type: oidDC, Value: "example"}},
		},
		URIs: []string{paymentsID},
	}); err != nil {
		return nil, err
	}
	if f.rsaPayments, err = f.paymentsCA.IssueClient(pki.Options{
		Key: pki.RSA2048, CommonName: "payments-api", URIs: []string{paymentsID},
	}); err != nil {
		return nil, err
	}
	if f.web, err = f.webCA.IssueClient(pki.Options{
		CommonName: "web-frontend", Organization: []string{"Example Corp"}, URIs: []string{webID},
	}); err != nil {
		return nil, err
	}
	f.partnerSerial = big.NewInt(0x1003)
	if f.partner, err = f.root.IssueClient(pki.Options{
		CommonName:  "partner",
		DNSNames:    []string{"api.partner.example.com", "partner.example.com"},
		Emails:      []string{"ops@partner.example.com"},
		IPAddresses: []net.IP{net.ParseIP("10.1.2.3"), net.ParseIP("2001:db8::5")},
		Serial:      f.partnerSerial,
	}); err != nil {
		return nil, err
	}
	if f.nearExpiry, err = f.paymentsCA.IssueClient(pki.Options{
		CommonName: "payments-api", URIs: []string{paymentsID},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * time.Hour),
	}); err != nil {
		return nil, err
	}
	if f.twoSPIFFE, err = f.paymentsCA.IssueClient(pki.Options{
		CommonName: "two", URIs: []string{paymentsID, "spiffe://prod.example.org/ns/payments/sa/other"},
	}); err != nil {
		return nil, err
	}
	if f.spiffeAndHTTPS, err = f.paymentsCA.IssueClient(pki.Options{
		CommonName: "mixed", URIs: []string{paymentsID, "https://payments.example.com/id"},
	}); err != nil {
		return nil, err
	}
	if f.httpsOnly, err = f.paymentsCA.IssueClient(pki.Options{
		CommonName: "https", URIs: []string{"https://payments.example.com/id"},
	}); err != nil {
		return nil, err
	}
	// URI SANs that look like SPIFFE IDs under the payments path but break
	// the SPIFFE ID specification. Each is one the x509 package accepts.
	for name, uri := range map[string]string{
		"upper-trust-domain": "spiffe://PROD.example.org/ns/payments/sa/api",
		"query":              "spiffe://prod.example.org/ns/payments/sa/api?x=1",
		"fragment":           "spiffe://prod.example.org/ns/payments/sa/api#x",
		"userinfo":           "spiffe://evil@prod.example.org/ns/payments/sa/api",
		"trailing-slash":     "spiffe://prod.example.org/ns/payments/sa/api/",
		"empty-segment":      "spiffe://prod.example.org/ns/payments//api",
		"dot-dot":            "spiffe://prod.example.org/ns/payments/../payments/sa/api",
		"dot":                "spiffe://prod.example.org/ns/payments/./api",
		"percent":            "spiffe://prod.example.org/ns/payments/sa/%61pi",
	} {
		l, err := f.paymentsCA.IssueClient(pki.Options{CommonName: name, URIs: []string{uri}})
		if err != nil {
			return nil, err
		}
		f.badSPIFFE[name] = l
	}
	return f, nil
}

// verifiedChain verifies leaf against the fixtures' root the way crypto/tls
// does for a client certificate and returns the first chain.
func (f *fixtures) verifiedChains(t testing.TB, leaf *pki.Leaf) [][]*x509.Certificate {
	t.Helper()
	inter := x509.NewCertPool()
	for _, c := range leaf.Intermediates {
		inter.AddCert(c)
	}
	chains, err := leaf.Cert.Verify(x509.VerifyOptions{
		Roots: f.root.Pool(), Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Fatalf("verifying %s: %v", leaf.Cert.Subject, err)
	}
	return chains
}

// state is the connection state crypto/tls reports for a verified client
// certificate: the certificates the client sent and the verified chains.
func (f *fixtures) state(t testing.TB, leaf *pki.Leaf) tls.ConnectionState {
	return tls.ConnectionState{
		HandshakeComplete: true,
		PeerCertificates:  append([]*x509.Certificate{leaf.Cert}, leaf.Intermediates...),
		VerifiedChains:    f.verifiedChains(t, leaf),
	}
}
