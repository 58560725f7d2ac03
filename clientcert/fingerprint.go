package clientcert

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// parseFingerprint parses a fingerprint value: the SHA-256 digest of the
// certificate's DER encoding as 64 hexadecimal digits, in either case,
// optionally written as 32 colon-separated pairs (AB:CD:...), the form
// `openssl x509 -fingerprint -sha256` prints.
func parseFingerprint(v string) ([sha256.Size]byte, error) {
	var fp [sha256.Size]byte
	h := v
	if strings.Contains(v, ":") {
		pairs := strings.Split(v, ":")
		if len(pairs) != sha256.Size {
			return fp, fmt.Errorf("%q is not a SHA-256 fingerprint: with colons it needs %d two-digit groups, found %d", v, sha256.Size, len(pairs))
		}
		for _, p := range pairs {
			if len(p) != 2 {
				return fp, fmt.Errorf("%q is not a SHA-256 fingerprint: group %q is not two hex digits", v, p)
			}
		}
		h = strings.ReplaceAll(v, ":", "")
	}
	if len(h) != 2*sha256.Size {
		return fp, fmt.Errorf("%q is not a SHA-256 fingerprint: want %d hex digits, found %d characters", v, 2*sha256.Size, len(h))
	}
	if _, err := hex.Decode(fp[:], []byte(h)); err != nil {
		return fp, fmt.Errorf("%q is not a SHA-256 fingerprint: %v", v, err)
	}
	return fp, nil
}
