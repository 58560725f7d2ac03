package tlsresume

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/certid"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// RevokeRequest is the body of POST /tls_resume/revoke. It names one client
// certificate in exactly one of three ways:
//
//   - `sha256`: the SHA-256 fingerprint of the leaf's DER encoding, in hex;
//     colons, spaces and case are ignored (`openssl x509 -fingerprint
//     -sha256` output works as is);
//   - `cert_pem`: the leaf certificate itself, PEM-encoded (its fingerprint
//     is computed);
//   - `serial` with the issuer, as `issuer_sha256` (hex SHA-256 of the
//     issuer's DER-encoded subject name) or `issuer_pem` (the issuing CA's
//     certificate, PEM-encoded). This revokes the certificate and every
//     re-issue under the same serial, without needing the leaf.
//
// A certificate never seen by the fleet is accepted: it may be presented
// later, and revoking ahead of time is legitimate.
type RevokeRequest struct {
	// Hex SHA-256 of the leaf certificate's DER encoding.
	SHA256 string `json:"sha256,omitempty"`
	// The leaf certificate, PEM-encoded.
	CertPEM string `json:"cert_pem,omitempty"`
	// Hex SHA-256 of the issuer's DER-encoded subject (the leaf's raw
	// issuer name). Used with serial.
	IssuerSHA256 string `json:"issuer_sha256,omitempty"`
	// The issuing CA certificate, PEM-encoded. Used with serial.
	IssuerPEM string `json:"issuer_pem,omitempty"`
	// The leaf's serial number: decimal, or hex with a `0x` prefix or as
	// colon-separated two-digit bytes (`01:a3:ff`, as openssl prints it),
	// optionally negative (non-conforming certificates); the spellings the
	// client_cert serial field takes.
	Serial string `json:"serial,omitempty"`
	// Free text recorded with the entry (at most 256 bytes).
	Reason string `json:"reason,omitempty"`
	// When the certificate expires (RFC 3339), if known: the entry is
	// dropped from the deny list then, since an expired certificate is
	// refused anyway. Taken from the certificate with cert_pem. Without
	// it, the entry is kept for 400 days.
	NotAfter *time.Time `json:"not_after,omitempty"`
}

const maxReasonLen = 256

// deniedCert validates the request and returns the deny-list entry it names
// (without the Added time). Errors name the offending field.
func (r RevokeRequest) deniedCert() (keyring.DeniedCert, error) {
	var d keyring.DeniedCert
	if len(r.Reason) > maxReasonLen {
		return d, fmt.Errorf("reason: longer than %d bytes", maxReasonLen)
	}
	d.Reason = r.Reason
	if r.NotAfter != nil {
		if r.CertPEM != "" {
			return d, errors.New("not_after: taken from cert_pem; give only one")
		}
		d.NotAfter = r.NotAfter.UTC()
	}
	byLeaf := r.SHA256 != "" || r.CertPEM != ""
	byIssuer := r.IssuerSHA256 != "" || r.IssuerPEM != "" || r.Serial != ""
	switch {
	case byLeaf && byIssuer:
		return d, errors.New("name the certificate either by sha256/cert_pem or by issuer and serial, not both")
	case r.SHA256 != "" && r.CertPEM != "":
		return d, errors.New("sha256 and cert_pem both given: use one")
	case r.SHA256 != "":
		sum, err := certid.ParseFingerprint(r.SHA256)
		if err != nil {
			return d, fmt.Errorf("sha256: %v", err)
		}
		d.SHA256 = sum.String()
		return d, nil
	case r.CertPEM != "":
		cert, err := parsePEMCert(r.CertPEM)
		if err != nil {
			return d, fmt.Errorf("cert_pem: %v", err)
		}
		d.SHA256 = certid.Of(cert.Raw).String()
		d.NotAfter = cert.NotAfter.UTC()
		return d, nil
	case !byIssuer:
		return d, errors.New("missing certificate: give sha256, cert_pem, or issuer_sha256/issuer_pem with serial")
	}
	switch {
	case r.IssuerSHA256 != "" && r.IssuerPEM != "":
		return d, errors.New("issuer_sha256 and issuer_pem both given: use one")
	case r.IssuerSHA256 != "":
		sum, err := certid.ParseFingerprint(r.IssuerSHA256)
		if err != nil {
			return d, fmt.Errorf("issuer_sha256: %v", err)
		}
		d.IssuerSHA256 = sum.String()
	case r.IssuerPEM != "":
		ca, err := parsePEMCert(r.IssuerPEM)
		if err != nil {
			return d, fmt.Errorf("issuer_pem: %v", err)
		}
		d.IssuerSHA256 = certid.IssuerDigest(ca.RawSubject)
	default:
		return d, errors.New("serial given without issuer_sha256 or issuer_pem")
	}
	if r.Serial == "" {
		return d, errors.New("serial: required with an issuer")
	}
	serial, err := certid.ParseSerial(r.Serial)
	if err != nil {
		return d, fmt.Errorf("serial: %v", err)
	}
	d.Serial = serial.String()
	return d, nil
}

func parsePEMCert(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}
