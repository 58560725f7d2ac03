// Package certid parses and formats the values that name a certificate: its
// serial number, its SHA-256 fingerprint and the digest of its issuer's
// name. The client_cert matcher, the revoke admin API and the deny list all
// go through it, so a value one of them accepts names the same certificate
// in the others.
package certid

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// maxSerialOctets bounds the magnitude of a serial number ParseSerial
// accepts. RFC 5280 (4.1.2.2) allows 20 octets, but Go's certificate parser
// enforces no limit and non-conforming certificates exceed it; 64 octets
// leaves room for them while keeping every spelling short. A certificate
// with a longer serial is named by its fingerprint.
const maxSerialOctets = 64

// maxSerialText bounds the text ParseSerial reads: the longest spelling of
// the largest accepted serial is the colon form, a sign and 64 two-digit
// groups (192 characters). It keeps the cost of parsing an untrusted value
// small; leading zeros beyond it are refused as too long.
const maxSerialText = 200

// ParseSerial parses a certificate serial number written in one of three
// spellings, optionally preceded by a minus sign:
//
//   - decimal digits: "4099";
//   - hexadecimal digits after 0x or 0X: "0x1003";
//   - hexadecimal bytes separated by colons, two digits each, as OpenSSL
//     prints them: "10:03". A single group has no colon and reads as
//     decimal, so this form names serials of two octets or more (a leading
//     "00:" group spells a smaller one).
//
// Hex digits may be in either case; nothing else (spaces, a plus sign) is
// accepted. Serial numbers are positive by RFC 5280, but Go parses
// certificates with negative serials when GODEBUG x509negativeserial=1 is
// set (the default before Go 1.23), and such certificates exist, so a
// sign is accepted: a deny list or a policy must be able to name any
// certificate the TLS stack may be shown. Go enforces no length either:
// serials of up to 64 octets are accepted (RFC 5280 allows 20), longer
// ones are named by fingerprint.
//
// The deny list stores the result in decimal (big.Int's String). Errors do
// not repeat the value: callers name the field and the value.
func ParseSerial(s string) (*big.Int, error) {
	if s == "" {
		return nil, errors.New("empty serial number")
	}
	if len(s) > maxSerialText {
		return nil, fmt.Errorf("too long for a serial number (%d characters)", len(s))
	}
	body, neg := strings.CutPrefix(s, "-")
	var digits string
	base := 16
	switch {
	case strings.HasPrefix(body, "0x") || strings.HasPrefix(body, "0X"):
		digits = body[2:]
		if digits == "" || !isHex(digits) {
			return nil, errSerialSyntax
		}
	case strings.Contains(body, ":"):
		groups := strings.Split(body, ":")
		for _, g := range groups {
			if len(g) != 2 || !isHex(g) {
				return nil, fmt.Errorf("the colon-separated form needs two-digit hex groups, found %q", g)
			}
		}
		digits = strings.Join(groups, "")
	default:
		if body == "" || strings.Trim(body, "0123456789") != "" {
			return nil, errSerialSyntax
		}
		digits, base = body, 10
	}
	n, ok := new(big.Int).SetString(digits, base)
	if !ok { // unreachable: digits are checked above
		return nil, errSerialSyntax
	}
	if n.BitLen() > maxSerialOctets*8 {
		return nil, fmt.Errorf("longer than %d octets (RFC 5280 allows 20 octets); name the certificate by its fingerprint", maxSerialOctets)
	}
	if neg {
		n.Neg(n)
	}
	return n, nil
}

var errSerialSyntax = errors.New("not a serial number: neither decimal digits, 0x followed by hexadecimal digits, nor colon-separated hex pairs (optionally after a minus sign)")

// Fingerprint is the SHA-256 digest of a certificate's DER encoding.
type Fingerprint [sha256.Size]byte

// Of returns the fingerprint of a certificate's DER encoding.
func Of(der []byte) Fingerprint { return sha256.Sum256(der) }

// String returns the fingerprint in lowercase hex, the form the deny list
// stores.
func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// maxFingerprintText bounds the text ParseFingerprint reads: 64 digits with
// room for separators.
const maxFingerprintText = 4 * sha256.Size

// ParseFingerprint parses a SHA-256 digest written in hex. Colons and
// spaces are ignored wherever they are, and so is case: the output of
// `openssl x509 -fingerprint -sha256` (after its "=") works as is. A digest
// has a fixed length, so separators carry no information and need no
// rules, unlike a serial's. Errors do not repeat the value.
func ParseFingerprint(s string) (Fingerprint, error) {
	var fp Fingerprint
	if len(s) > maxFingerprintText {
		return fp, fmt.Errorf("too long for a SHA-256 digest (%d characters)", len(s))
	}
	var buf [maxFingerprintText]byte
	h := buf[:0]
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':' || c == ' ':
		case isHexByte(c):
			h = append(h, c)
		default:
			return fp, fmt.Errorf("not hex: invalid byte %q at offset %d", c, i)
		}
	}
	switch {
	case len(h)%2 != 0:
		return fp, fmt.Errorf("%d hex digits, an odd number (a SHA-256 digest is 64, two hex digits per byte)", len(h))
	case len(h) != 2*sha256.Size:
		return fp, fmt.Errorf("%d bytes, a SHA-256 digest has %d (64 hex digits)", len(h)/2, sha256.Size)
	}
	if _, err := hex.Decode(fp[:], h); err != nil { // unreachable: digits are checked above
		return fp, err
	}
	return fp, nil
}

// IssuerDigest is the lowercase hex SHA-256 of a DER-encoded name: the
// issuer's raw subject, or equivalently a leaf's raw issuer. The deny list
// stores it with a decimal serial to name a certificate by issuer and
// serial.
func IssuerDigest(rawName []byte) string {
	return Of(rawName).String()
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return true
}

func isHexByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
