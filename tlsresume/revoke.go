package tlsresume

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/tlsresume/caddy-tlsresume/storage"
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
	// colon-separated bytes (`01:a3:ff`, as openssl prints it).
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

// DeniedCert validates the request and returns the deny-list entry it names
// (without the Added time). Errors name the offending field.
func (r RevokeRequest) DeniedCert() (storage.DeniedCert, error) {
	var d storage.DeniedCert
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
		sum, err := ParseFingerprint(r.SHA256)
		if err != nil {
			return d, fmt.Errorf("sha256: %v", err)
		}
		d.SHA256 = sum
		return d, nil
	case r.CertPEM != "":
		cert, err := parsePEMCert(r.CertPEM)
		if err != nil {
			return d, fmt.Errorf("cert_pem: %v", err)
		}
		sum := sha256.Sum256(cert.Raw)
		d.SHA256 = hex.EncodeToString(sum[:])
		d.NotAfter = cert.NotAfter.UTC()
		return d, nil
	case !byIssuer:
		return d, errors.New("missing certificate: give sha256, cert_pem, or issuer_sha256/issuer_pem with serial")
	}
	switch {
	case r.IssuerSHA256 != "" && r.IssuerPEM != "":
		return d, errors.New("issuer_sha256 and issuer_pem both given: use one")
	case r.IssuerSHA256 != "":
		sum, err := ParseFingerprint(r.IssuerSHA256)
		if err != nil {
			return d, fmt.Errorf("issuer_sha256: %v", err)
		}
		d.IssuerSHA256 = sum
	case r.IssuerPEM != "":
		ca, err := parsePEMCert(r.IssuerPEM)
		if err != nil {
			return d, fmt.Errorf("issuer_pem: %v", err)
		}
		d.IssuerSHA256 = IssuerDigest(ca.RawSubject)
	default:
		return d, errors.New("serial given without issuer_sha256 or issuer_pem")
	}
	if r.Serial == "" {
		return d, errors.New("serial: required with an issuer")
	}
	serial, err := ParseSerial(r.Serial)
	if err != nil {
		return d, fmt.Errorf("serial: %v", err)
	}
	d.Serial = serial.String()
	return d, nil
}

// ParseFingerprint parses a hex SHA-256 digest, ignoring colons, spaces and
// case, and returns it in lowercase hex.
func ParseFingerprint(s string) (string, error) {
	if len(s) > 4*sha256.Size {
		return "", errors.New("too long for a SHA-256 digest")
	}
	clean := strings.Map(func(r rune) rune {
		if r == ':' || r == ' ' {
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(clean)
	if err != nil {
		return "", fmt.Errorf("not hex: %q", s)
	}
	if len(b) != sha256.Size {
		return "", fmt.Errorf("%d bytes, a SHA-256 digest has %d", len(b), sha256.Size)
	}
	return hex.EncodeToString(b), nil
}

// maxSerialLen bounds a serial's text; RFC 5280 serials are at most 20
// octets, but non-conforming ones exist, so allow some room.
const maxSerialLen = 128

// ParseSerial parses a certificate serial number: decimal (optionally
// negative, as some non-conforming certificates have), or hex with a `0x`
// prefix or as colon-separated bytes.
func ParseSerial(s string) (*big.Int, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	if len(s) > maxSerialLen {
		return nil, errors.New("too long")
	}
	n := new(big.Int)
	var ok bool
	switch {
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		ok = isHex(s[2:]) && len(s) > 2
		if ok {
			_, ok = n.SetString(s[2:], 16)
		}
	case strings.Contains(s, ":"):
		parts := strings.Split(s, ":")
		for i, p := range parts {
			if len(p) == 0 || len(p) > 2 || !isHex(p) {
				return nil, fmt.Errorf("%q: colon-separated serials need one or two hex digits per byte", s)
			}
			if len(p) == 1 {
				parts[i] = "0" + p // one byte, not one nibble
			}
		}
		_, ok = n.SetString(strings.Join(parts, ""), 16)
	default:
		digits := strings.TrimPrefix(s, "-")
		ok = digits != "" && strings.Trim(digits, "0123456789") == ""
		if ok {
			_, ok = n.SetString(s, 10)
		}
	}
	if !ok {
		return nil, fmt.Errorf("%q is neither decimal nor 0x-prefixed or colon-separated hex", s)
	}
	return n, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func parsePEMCert(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}
