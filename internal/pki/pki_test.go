package pki

import (
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"
	"time"
)

func TestSetVerifies(t *testing.T) {
	for _, kt := range []KeyType{ECDSAP256, RSA2048} {
		t.Run(kt.String(), func(t *testing.T) {
			s, err := NewSet(kt, "api.example.com")
			if err != nil {
				t.Fatal(err)
			}
			inter := x509.NewCertPool()
			inter.AddCert(s.Intermediate.Cert)
			for _, c := range []struct {
				leaf *Leaf
				eku  x509.ExtKeyUsage
				dns  string
			}{
				{s.Server, x509.ExtKeyUsageServerAuth, "api.example.com"},
				{s.ClientA, x509.ExtKeyUsageClientAuth, ""},
				{s.ClientB, x509.ExtKeyUsageClientAuth, ""},
			} {
				_, err := c.leaf.Cert.Verify(x509.VerifyOptions{
					Roots: s.Root.Pool(), Intermediates: inter, DNSName: c.dns,
					KeyUsages: []x509.ExtKeyUsage{c.eku},
				})
				if err != nil {
					t.Errorf("%s: %v", c.leaf.Cert.Subject.CommonName, err)
				}
			}
			if _, isRSA := s.ClientA.Key.(*rsa.PrivateKey); isRSA != (kt == RSA2048) {
				t.Errorf("key type mismatch for %v", kt)
			}
			if got := s.ClientA.Cert.URIs[0].String(); got != "spiffe://demo.example.org/ns/payments/sa/api" {
				t.Errorf("SPIFFE URI = %q", got)
			}
			if _, err := tls.X509KeyPair(s.ClientA.CertPEM(), s.ClientA.KeyPEM()); err != nil {
				t.Errorf("PEM pair does not load: %v", err)
			}
		})
	}
}

func TestValidityWindows(t *testing.T) {
	root, err := NewRoot("r", ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	expired, err := root.IssueClient(Options{CommonName: "old", NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	future, err := root.IssueClient(Options{CommonName: "future", NotBefore: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	opts := x509.VerifyOptions{Roots: root.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, l := range []*Leaf{expired, future} {
		var invalid x509.CertificateInvalidError
		if _, err := l.Cert.Verify(opts); !errors.As(err, &invalid) || invalid.Reason != x509.Expired {
			t.Errorf("%s: want Expired error, got %v", l.Cert.Subject.CommonName, err)
		}
	}
}

func TestCRL(t *testing.T) {
	root, err := NewRoot("r", RSA2048)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := root.IssueClient(Options{CommonName: "good"})
	bad, _ := root.IssueClient(Options{CommonName: "bad"})
	root.Revoke(bad.Cert)
	der, err := root.CRL()
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(root.Cert); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 1 || crl.RevokedCertificateEntries[0].SerialNumber.Cmp(bad.Cert.SerialNumber) != 0 {
		t.Fatalf("CRL entries = %+v", crl.RevokedCertificateEntries)
	}
	if good.Cert.SerialNumber.Cmp(bad.Cert.SerialNumber) == 0 {
		t.Fatal("serials collide")
	}
}

func TestWriteFiles(t *testing.T) {
	s, err := NewSet(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(f.ClientBCert, f.ClientBKey); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey); err != nil {
		t.Fatal(err)
	}
}
