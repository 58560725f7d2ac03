package clientcert

import (
	"fmt"
	"math/big"
	"strings"
)

// parseSerial parses a serial value: decimal digits ("4099"), hexadecimal
// after 0x ("0x1003"), or hexadecimal pairs separated by colons
// ("10:03", the form OpenSSL prints). Serial numbers are positive
// (RFC 5280, 4.1.2.2), so a sign is refused.
func parseSerial(v string) (*big.Int, error) {
	var n *big.Int
	var ok bool
	switch {
	case v == "":
		return nil, fmt.Errorf("empty serial number")
	case strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X"):
		digits := v[2:]
		if digits == "" || !isHexDigits(digits) {
			return nil, fmt.Errorf("%q is not a hexadecimal serial number", v)
		}
		n, ok = new(big.Int).SetString(digits, 16)
	case strings.Contains(v, ":"):
		for _, p := range strings.Split(v, ":") {
			if len(p) != 2 || !isHexDigits(p) {
				return nil, fmt.Errorf("%q is not a serial number: colon-separated form needs two-digit hex groups, found %q", v, p)
			}
		}
		n, ok = new(big.Int).SetString(strings.ReplaceAll(v, ":", ""), 16)
	default:
		for i := 0; i < len(v); i++ {
			if v[i] < '0' || v[i] > '9' {
				return nil, fmt.Errorf("%q is not a serial number: use decimal digits, 0x followed by hex digits, or colon-separated hex pairs", v)
			}
		}
		n, ok = new(big.Int).SetString(v, 10)
	}
	if !ok {
		return nil, fmt.Errorf("%q is not a serial number", v)
	}
	if n.BitLen() > 20*8 {
		return nil, fmt.Errorf("%q is longer than the 20 octets RFC 5280 allows a serial number", v)
	}
	return n, nil
}

func isHexDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
