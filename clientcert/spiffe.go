package clientcert

import (
	"bytes"
	"fmt"
	"strings"
)

// SPIFFE IDs, per the SPIFFE ID specification (and as go-spiffe parses them):
//
//	spiffe://<trust domain>[/<segment>]...
//
// The scheme is exactly "spiffe" (lower case). The trust domain is not
// empty and holds only lower-case letters, digits, '.', '-' and '_'; so a
// port, user info or percent-encoding can never appear. Each path segment is
// not empty, is not "." or "..", and holds only letters, digits, '.', '-'
// and '_'; so there is no trailing slash, query or fragment. This package
// additionally refuses IDs longer than 2048 bytes, the length the
// specification requires implementations to support.

const (
	spiffeScheme   = "spiffe://"
	spiffeMaxLen   = 2048
	spiffeTDMaxLen = 255
)

// Character classes of the SPIFFE ID grammar, as lookup tables.
var (
	trustDomainChars = charTable("abcdefghijklmnopqrstuvwxyz0123456789.-_")
	pathChars        = charTable("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
)

func charTable(chars string) (t [256]bool) {
	for i := 0; i < len(chars); i++ {
		t[chars[i]] = true
	}
	return t
}

// isTrustDomainChar reports whether c may appear in a trust domain name.
func isTrustDomainChar(c byte) bool { return trustDomainChars[c] }

// isPathChar reports whether c may appear in a SPIFFE ID path segment.
func isPathChar(c byte) bool { return pathChars[c] }

// splitSPIFFEID splits id into trust domain and path ("" or beginning with
// '/') when id is a SPIFFE ID; ok is false otherwise. It does not allocate.
// It does not check the trust domain's characters and length: the hot path
// compares the trust domain with those of the configured patterns, which
// were validated at provision time, so a trust domain equal to one of them
// is valid. Everything else (scheme, total length, non-empty trust domain,
// path) is checked.
func splitSPIFFEID(id []byte) (td, path []byte, ok bool) {
	if len(id) > spiffeMaxLen || string(id[:min(len(id), len(spiffeScheme))]) != spiffeScheme {
		return nil, nil, false
	}
	rest := id[len(spiffeScheme):]
	i := bytes.IndexByte(rest, '/')
	if i < 0 {
		i = len(rest)
	}
	if i == 0 || !validSPIFFEPath(rest[i:]) {
		return nil, nil, false
	}
	return rest[:i], rest[i:], true
}

// validSPIFFEPath reports whether p is a valid SPIFFE ID path: empty, or
// one or more "/segment" with non-empty segments of path characters that
// are not "." or "..".
func validSPIFFEPath(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	if p[0] != '/' {
		return false
	}
	// A segment is "." or ".." exactly when it is all dots and at most
	// two long.
	segLen, dots := 0, 0
	for _, c := range p[1:] {
		if c == '/' {
			if segLen == 0 || (segLen == dots && dots <= 2) {
				return false
			}
			segLen, dots = 0, 0
			continue
		}
		if !pathChars[c] {
			return false
		}
		segLen++
		if c == '.' {
			dots++
		}
	}
	return segLen != 0 && !(segLen == dots && dots <= 2)
}

// spiffePattern is a compiled spiffe_id value: an exact trust domain and a
// glob over the path.
type spiffePattern struct {
	raw         string
	trustDomain string
	path        glob
}

// compileSPIFFEPattern compiles a spiffe_id value such as
// "spiffe://prod.example.org/ns/payments/*". The trust domain must be exact
// and valid; the path must be a valid SPIFFE ID path in which '*' and '?'
// may stand for characters (a '*' also spans '/'), so that the pattern can
// match valid IDs and nothing else is silently accepted.
func compileSPIFFEPattern(p string) (spiffePattern, error) {
	if !strings.HasPrefix(p, spiffeScheme) {
		return spiffePattern{}, fmt.Errorf("%q is not a SPIFFE ID pattern: it must begin with %q", p, spiffeScheme)
	}
	rest := p[len(spiffeScheme):]
	td, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		td, path = rest[:i], rest[i:]
	}
	if td == "" {
		return spiffePattern{}, fmt.Errorf("SPIFFE ID pattern %q has an empty trust domain", p)
	}
	if len(td) > spiffeTDMaxLen {
		return spiffePattern{}, fmt.Errorf("SPIFFE ID pattern %q: trust domain longer than %d bytes", p, spiffeTDMaxLen)
	}
	for i := 0; i < len(td); i++ {
		c := td[i]
		if c == '*' || c == '?' {
			return spiffePattern{}, fmt.Errorf("SPIFFE ID pattern %q: the trust domain must be exact (no wildcards); list each trust domain separately", p)
		}
		if !isTrustDomainChar(c) {
			return spiffePattern{}, fmt.Errorf("SPIFFE ID pattern %q: trust domain %q may hold only lower-case letters, digits, '.', '-' and '_' (found %q)", p, td, c)
		}
	}
	if path != "" {
		segs := strings.Split(path[1:], "/")
		for _, seg := range segs {
			switch seg {
			case "":
				return spiffePattern{}, fmt.Errorf("SPIFFE ID pattern %q: empty path segment (double or trailing '/')", p)
			case ".", "..":
				return spiffePattern{}, fmt.Errorf("SPIFFE ID pattern %q: path segment %q is not allowed", p, seg)
			}
			for i := 0; i < len(seg); i++ {
				if c := seg[i]; !isPathChar(c) && c != '*' && c != '?' {
					return spiffePattern{}, fmt.Errorf("SPIFFE ID pattern %q: path may hold only letters, digits, '.', '-', '_' and the wildcards '*' and '?' (found %q)", p, c)
				}
			}
		}
	}
	if len(p) > spiffeMaxLen {
		return spiffePattern{}, fmt.Errorf("SPIFFE ID pattern %q is longer than %d bytes", p, spiffeMaxLen)
	}
	g, err := compileGlob(path, 0, false)
	if err != nil {
		return spiffePattern{}, fmt.Errorf("SPIFFE ID pattern %q: %v", p, err)
	}
	return spiffePattern{raw: p, trustDomain: td, path: g}, nil
}

// matchParsed reports whether an already validated SPIFFE ID, split into
// trust domain and path by splitSPIFFEID, matches the pattern.
func (sp *spiffePattern) matchParsed(td, path []byte) bool {
	if len(td) != len(sp.trustDomain) || !hasPrefixAt(td, 0, sp.trustDomain, false) {
		return false
	}
	return sp.path.matchBytes(path)
}
