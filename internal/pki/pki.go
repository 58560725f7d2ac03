// Package pki generates throwaway X.509 hierarchies: root and intermediate
// CAs, server and client leaves (ECDSA P-256 or RSA-2048), SPIFFE URI SANs,
// expired and not-yet-valid leaves, and signed CRLs for revoked leaves.
//
// It serves the test suites of every package and the `caddy tls-resume demo`
// command. It uses only the standard library so that it costs nothing in a
// user's Caddy build.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// KeyType selects the key algorithm of a generated certificate.
type KeyType int

const (
	// ECDSAP256 is an ECDSA key on the NIST P-256 curve (the default).
	ECDSAP256 KeyType = iota
	// RSA2048 is a 2048-bit RSA key.
	RSA2048
)

func (k KeyType) String() string {
	switch k {
	case ECDSAP256:
		return "ecdsa-p256"
	case RSA2048:
		return "rsa-2048"
	}
	return fmt.Sprintf("KeyType(%d)", int(k))
}

// NewKey generates a private key of the given type.
func NewKey(kt KeyType) (crypto.Signer, error) {
	switch kt {
	case ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("pki: unknown key type %d", int(kt))
}

// Options describe a certificate to issue. Zero values get sensible defaults:
// an ECDSA P-256 key, valid from an hour ago for 24 hours.
type Options struct {
	Key          KeyType
	CommonName   string
	Organization []string
	DNSNames     []string
	IPAddresses  []net.IP
	URIs         []string // e.g. SPIFFE IDs such as spiffe://example.org/ns/a/sa/b
	Emails       []string
	NotBefore    time.Time
	NotAfter     time.Time
	// Serial overrides the issuer's serial counter when non-nil.
	Serial *big.Int
	// Subject, when non-nil, is the leaf's whole subject name (for tests of
	// OU, C, DC and other attributes); CommonName and Organization are then
	// ignored.
	Subject *pkix.Name
}

func (o Options) validity() (time.Time, time.Time) {
	nb, na := o.NotBefore, o.NotAfter
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = nb.Add(25 * time.Hour)
	}
	return nb, na
}

// Issuer is a certificate authority able to sign leaves, intermediates and
// CRLs.
type Issuer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain holds this issuer's ancestors up to and including the root;
	// empty for a root.
	Chain []*x509.Certificate

	mu         sync.Mutex
	nextSerial int64
	revoked    []x509.RevocationListEntry
	crlNumber  int64
}

// Leaf is an end-entity certificate with its key and the intermediates a
// peer needs to build a chain to the root.
type Leaf struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Intermediates are the CA certificates between the leaf and the root
	// (the root itself is not included), nearest first.
	Intermediates []*x509.Certificate
	Issuer        *Issuer
}

// NewRoot creates a self-signed root CA.
func NewRoot(commonName string, kt KeyType) (*Issuer, error) {
	return newCA("root", commonName, kt, nil, randomSerial(), 10*365*24*time.Hour)
}

// NewIntermediate creates a CA signed by ca.
func (ca *Issuer) NewIntermediate(commonName string, kt KeyType) (*Issuer, error) {
	return newCA("intermediate", commonName, kt, ca, ca.serial(nil), 5*365*24*time.Hour)
}

// newCA creates a CA certificate valid for validity, signed by parent, or
// self-signed when parent is nil. An intermediate signs no other CA.
func newCA(kind, commonName string, kt KeyType, parent *Issuer, serial *big.Int, validity time.Duration) (*Issuer, error) {
	key, err := NewKey(kt)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"caddy-tlsresume test PKI"}},
		NotBefore:             now.Add(-2 * time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        parent != nil,
	}
	signer, signerKey := tmpl, crypto.Signer(key)
	var chain []*x509.Certificate
	if parent != nil {
		signer, signerKey = parent.Cert, parent.Key
		chain = append([]*x509.Certificate{parent.Cert}, parent.Chain...)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		return nil, fmt.Errorf("pki: creating %s %q: %w", kind, commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Issuer{Cert: cert, Key: key, Chain: chain, nextSerial: 1000}, nil
}

// IssueServer signs a server (TLS Web Server Authentication) leaf.
func (ca *Issuer) IssueServer(o Options) (*Leaf, error) {
	return ca.issue(o, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
}

// IssueClient signs a client (TLS Web Client Authentication) leaf.
func (ca *Issuer) IssueClient(o Options) (*Leaf, error) {
	return ca.issue(o, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
}

func (ca *Issuer) issue(o Options, eku []x509.ExtKeyUsage) (*Leaf, error) {
	key, err := NewKey(o.Key)
	if err != nil {
		return nil, err
	}
	nb, na := o.validity()
	uris := make([]*url.URL, 0, len(o.URIs))
	for _, s := range o.URIs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("pki: URI SAN %q: %w", s, err)
		}
		uris = append(uris, u)
	}
	ku := x509.KeyUsageDigitalSignature
	if o.Key == RSA2048 {
		ku |= x509.KeyUsageKeyEncipherment
	}
	subject := pkix.Name{CommonName: o.CommonName, Organization: o.Organization}
	if o.Subject != nil {
		subject = *o.Subject
	}
	tmpl := &x509.Certificate{
		SerialNumber:   ca.serial(o.Serial),
		Subject:        subject,
		NotBefore:      nb,
		NotAfter:       na,
		KeyUsage:       ku,
		ExtKeyUsage:    eku,
		DNSNames:       o.DNSNames,
		IPAddresses:    o.IPAddresses,
		URIs:           uris,
		EmailAddresses: o.Emails,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("pki: issuing %q: %w", o.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	// intermediates: the issuer itself unless it is the root, then its
	// ancestors except the root
	var inter []*x509.Certificate
	if len(ca.Chain) > 0 {
		inter = append(inter, ca.Cert)
		inter = append(inter, ca.Chain[:len(ca.Chain)-1]...)
	}
	return &Leaf{Cert: cert, Key: key, Intermediates: inter, Issuer: ca}, nil
}

func (ca *Issuer) serial(override *big.Int) *big.Int {
	if override != nil {
		return new(big.Int).Set(override)
	}
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.nextSerial++
	return big.NewInt(ca.nextSerial)
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

// Revoke adds leaf to the issuer's revocation list.
func (ca *Issuer) Revoke(cert *x509.Certificate) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.revoked = append(ca.revoked, x509.RevocationListEntry{
		SerialNumber:   cert.SerialNumber,
		RevocationTime: time.Now().Add(-time.Minute),
	})
}

// CRL returns a freshly signed DER-encoded CRL listing every revoked serial.
func (ca *Issuer) CRL() ([]byte, error) {
	ca.mu.Lock()
	ca.crlNumber++
	tmpl := &x509.RevocationList{
		RevokedCertificateEntries: append([]x509.RevocationListEntry(nil), ca.revoked...),
		Number:                    big.NewInt(ca.crlNumber),
		ThisUpdate:                time.Now().Add(-time.Minute),
		NextUpdate:                time.Now().Add(24 * time.Hour),
	}
	ca.mu.Unlock()
	return x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
}

// Root returns the root certificate of the issuer's hierarchy.
func (ca *Issuer) Root() *x509.Certificate {
	if len(ca.Chain) == 0 {
		return ca.Cert
	}
	return ca.Chain[len(ca.Chain)-1]
}

// Pool returns a certificate pool holding only the hierarchy's root.
func (ca *Issuer) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Root())
	return p
}

// CertPEM returns the issuer's own certificate in PEM.
func (ca *Issuer) CertPEM() []byte { return certPEM(ca.Cert) }

// TLSCertificate returns the leaf and its intermediates as a tls.Certificate.
func (l *Leaf) TLSCertificate() tls.Certificate {
	c := tls.Certificate{PrivateKey: l.Key, Leaf: l.Cert, Certificate: [][]byte{l.Cert.Raw}}
	for _, ic := range l.Intermediates {
		c.Certificate = append(c.Certificate, ic.Raw)
	}
	return c
}

// CertPEM returns the leaf followed by its intermediates in PEM.
func (l *Leaf) CertPEM() []byte {
	out := certPEM(l.Cert)
	for _, ic := range l.Intermediates {
		out = append(out, certPEM(ic)...)
	}
	return out
}

// KeyPEM returns the leaf's private key as PKCS#8 PEM.
func (l *Leaf) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(l.Key)
	if err != nil {
		panic(err) // only ECDSA and RSA keys are generated here
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes NAME.pem (leaf and intermediates) and NAME.key into dir
// and returns their paths. The key file is mode 0600.
func (l *Leaf) WriteFiles(dir, name string) (certFile, keyFile string, err error) {
	certFile = filepath.Join(dir, name+".pem")
	keyFile = filepath.Join(dir, name+".key")
	if err = os.WriteFile(certFile, l.CertPEM(), 0o644); err != nil {
		return "", "", err
	}
	if err = os.WriteFile(keyFile, l.KeyPEM(), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// WriteCertFile writes the issuer's certificate to dir/NAME.pem.
func (ca *Issuer) WriteCertFile(dir, name string) (string, error) {
	p := filepath.Join(dir, name+".pem")
	return p, os.WriteFile(p, ca.CertPEM(), 0o644)
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
