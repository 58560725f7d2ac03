package clientcert

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseSPIFFEID(t *testing.T) {
	long := "spiffe://example.org/" + strings.Repeat("a", spiffeMaxLen)
	for _, tc := range []struct {
		id       string
		td, path string
		ok       bool
	}{
		{id: "spiffe://example.org", td: "example.org", ok: true},
		{id: "spiffe://example.org/ns/payments/sa/api", td: "example.org", path: "/ns/payments/sa/api", ok: true},
		{id: "spiffe://a-b_c.0/A.b-_9/x", td: "a-b_c.0", path: "/A.b-_9/x", ok: true},
		{id: "spiffe://example.org/...", td: "example.org", path: "/...", ok: true},
		{id: "spiffe://example.org/.x", td: "example.org", path: "/.x", ok: true},
		{id: "SPIFFE://example.org/x"},          // scheme must be lower case
		{id: "spiffe:/example.org/x"},           // not an authority
		{id: "https://example.org/x"},           // wrong scheme
		{id: "spiffe://"},                       // empty trust domain
		{id: "spiffe:///x"},                     // empty trust domain
		{id: "spiffe://Example.org/x"},          // upper-case trust domain
		{id: "spiffe://example.org:8443/x"},     // port
		{id: "spiffe://user@example.org/x"},     // user info
		{id: "spiffe://example.org/x?q=1"},      // query
		{id: "spiffe://example.org/x#frag"},     // fragment
		{id: "spiffe://example.org/"},           // trailing slash
		{id: "spiffe://example.org/x/"},         // trailing slash
		{id: "spiffe://example.org//x"},         // empty segment
		{id: "spiffe://example.org/./x"},        // dot segment
		{id: "spiffe://example.org/x/.."},       // dot-dot segment
		{id: "spiffe://example.org/%70ayments"}, // percent-encoding
		{id: "spiffe://example.org/a b"},        // space
		{id: "spiffe://exa%6dple.org/x"},        // percent-encoding in the trust domain
		{id: "spiffe://example.org/é"},          // non-ASCII
		{id: "spiffe://" + strings.Repeat("a", 256) + "/x"},
		{id: long},
	} {
		td, path, ok := parseSPIFFEID([]byte(tc.id))
		if ok != tc.ok || (ok && (string(td) != tc.td || string(path) != tc.path)) {
			t.Errorf("parseSPIFFEID(%q) = %q, %q, %v; want %q, %q, %v", tc.id, td, path, ok, tc.td, tc.path, tc.ok)
		}
	}
}

func TestSPIFFEPattern(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		yes, no []string
	}{
		{"spiffe://prod.example.org/ns/payments/*",
			[]string{"spiffe://prod.example.org/ns/payments/sa/api", "spiffe://prod.example.org/ns/payments/x"},
			[]string{"spiffe://prod.example.org/ns/payments", "spiffe://prod.example.org/ns/web/sa/api",
				"spiffe://staging.example.org/ns/payments/sa/api", "spiffe://prod.example.org/ns/paymentsx/sa"}},
		{"spiffe://prod.example.org",
			[]string{"spiffe://prod.example.org"},
			[]string{"spiffe://prod.example.org/x"}},
		{"spiffe://prod.example.org/*",
			[]string{"spiffe://prod.example.org/x", "spiffe://prod.example.org/a/b/c"},
			[]string{"spiffe://prod.example.org", "spiffe://prod.example.org.evil/x"}},
		{"spiffe://example.org/ns/*/sa/api",
			[]string{"spiffe://example.org/ns/a/sa/api", "spiffe://example.org/ns/a/b/sa/api"},
			[]string{"spiffe://example.org/ns/a/sa/web"}},
		{"spiffe://example.org/sa/api-?",
			[]string{"spiffe://example.org/sa/api-1"},
			[]string{"spiffe://example.org/sa/api-12", "spiffe://example.org/sa/api-"}},
		{"spiffe://example.org/SA/Api",
			[]string{"spiffe://example.org/SA/Api"},
			[]string{"spiffe://example.org/sa/api"}},
	} {
		sp, err := compileSPIFFEPattern(tc.pattern)
		if err != nil {
			t.Fatalf("compileSPIFFEPattern(%q): %v", tc.pattern, err)
		}
		for _, id := range tc.yes {
			td, path, ok := parseSPIFFEID([]byte(id))
			if !ok || !sp.matchParsed(td, path) {
				t.Errorf("pattern %q should match %q", tc.pattern, id)
			}
		}
		for _, id := range tc.no {
			td, path, ok := parseSPIFFEID([]byte(id))
			if ok && sp.matchParsed(td, path) {
				t.Errorf("pattern %q should not match %q", tc.pattern, id)
			}
		}
	}
}

func TestSPIFFEPatternErrors(t *testing.T) {
	for _, tc := range []struct{ pattern, want string }{
		{"prod.example.org/ns/*", "must begin with"},
		{"SPIFFE://prod.example.org/x", "must begin with"},
		{"spiffe://", "empty trust domain"},
		{"spiffe:///x", "empty trust domain"},
		{"spiffe://*.example.org/x", "must be exact"},
		{"spiffe://Prod.example.org/x", "trust domain"},
		{"spiffe://prod.example.org:443/x", "trust domain"},
		{"spiffe://user@prod.example.org/x", "trust domain"},
		{"spiffe://prod.example.org/", "empty path segment"},
		{"spiffe://prod.example.org//x", "empty path segment"},
		{"spiffe://prod.example.org/ns/./x", `"."`},
		{"spiffe://prod.example.org/ns/../x", `".."`},
		{"spiffe://prod.example.org/x?q", "path may hold only"}, // '?' is a wildcard, '=' is not allowed: see below
		{"spiffe://prod.example.org/x?q=1", "path may hold only"},
		{"spiffe://prod.example.org/x#f", "path may hold only"},
		{"spiffe://prod.example.org/%70", "path may hold only"},
		{`spiffe://prod.example.org/\*`, "path may hold only"},
		{"spiffe://" + strings.Repeat("a", 256), "longer than"},
	} {
		_, err := compileSPIFFEPattern(tc.pattern)
		if tc.pattern == "spiffe://prod.example.org/x?q" {
			// '?' is a one-character wildcard; this pattern is valid.
			if err != nil {
				t.Errorf("compileSPIFFEPattern(%q): %v", tc.pattern, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), strconv.Quote(tc.pattern)) {
			t.Errorf("compileSPIFFEPattern(%q) = %v; want an error naming the pattern and containing %q", tc.pattern, err, tc.want)
		}
	}
}

// referenceSPIFFEID validates a SPIFFE ID with straightforward string
// operations, independently of parseSPIFFEID.
func referenceSPIFFEID(id string) (td, path string, ok bool) {
	if len(id) > spiffeMaxLen {
		return "", "", false
	}
	rest, found := strings.CutPrefix(id, "spiffe://")
	if !found {
		return "", "", false
	}
	td, p, hasPath := strings.Cut(rest, "/")
	if td == "" || len(td) > spiffeTDMaxLen || strings.Trim(td, "abcdefghijklmnopqrstuvwxyz0123456789.-_") != "" {
		return "", "", false
	}
	if !hasPath {
		return td, "", true
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." ||
			strings.Trim(seg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != "" {
			return "", "", false
		}
	}
	return td, "/" + p, true
}

func FuzzSPIFFEID(f *testing.F) {
	for _, s := range []string{
		"spiffe://example.org", "spiffe://example.org/ns/payments/sa/api", "spiffe://example.org/",
		"spiffe://example.org//x", "spiffe://example.org/./x", "spiffe://Example.org/x",
		"spiffe://example.org:1/x", "spiffe://example.org/x?y", "spiffe://example.org/*",
		"spiffe://example.org/ns/*/sa/?", "SPIFFE://x/y", "spiffe:///",
	} {
		f.Add(s, "")
		f.Add(s, "spiffe://example.org/ns/payments/*")
	}
	f.Fuzz(func(t *testing.T, id, pattern string) {
		btd, bpath, ok := parseSPIFFEID([]byte(id))
		td, path := string(btd), string(bpath)
		rtd, rpath, rok := referenceSPIFFEID(id)
		if ok != rok || td != rtd || path != rpath {
			t.Fatalf("parseSPIFFEID(%q) = %q, %q, %v; reference %q, %q, %v", id, td, path, ok, rtd, rpath, rok)
		}
		// splitSPIFFEID differs only in not checking the trust domain
		std, spath, sok := splitSPIFFEID([]byte(id))
		if ok && (!sok || string(std) != td || string(spath) != path) {
			t.Fatalf("splitSPIFFEID(%q) = %q, %q, %v; parse gave %q, %q", id, std, spath, sok, td, path)
		}
		if sok && !ok {
			tdOK := len(std) <= spiffeTDMaxLen && strings.Trim(string(std), "abcdefghijklmnopqrstuvwxyz0123456789.-_") == ""
			if tdOK {
				t.Fatalf("splitSPIFFEID(%q) ok, parse not, but the trust domain %q is valid", id, std)
			}
		}
		if ok {
			// a valid ID compiles as a pattern that matches itself
			// (when it has no wildcard characters, which IDs cannot have)
			sp, err := compileSPIFFEPattern(id)
			if err != nil {
				t.Fatalf("valid ID %q does not compile as a pattern: %v", id, err)
			}
			if !sp.matchParsed([]byte(td), []byte(path)) {
				t.Fatalf("pattern %q does not match itself", id)
			}
		}
		sp, err := compileSPIFFEPattern(pattern)
		if err != nil {
			return
		}
		if _, _, pok := referenceSPIFFEID(strings.NewReplacer("*", "x", "?", "x").Replace(pattern)); !pok {
			t.Fatalf("pattern %q compiled although it can never stand for a valid SPIFFE ID", pattern)
		}
		if ok && sp.matchParsed([]byte(td), []byte(path)) && td != sp.trustDomain {
			t.Fatalf("pattern %q matched %q across trust domains", pattern, id)
		}
	})
}

// parseSPIFFEID splits id into trust domain and path ("" or beginning with
// '/') when id is a valid SPIFFE ID (splitSPIFFEID and the trust domain's
// characters and length); ok is false otherwise.
func parseSPIFFEID(id []byte) (td, path []byte, ok bool) {
	td, path, ok = splitSPIFFEID(id)
	if !ok || len(td) > spiffeTDMaxLen {
		return nil, nil, false
	}
	for _, c := range td {
		if !trustDomainChars[c] {
			return nil, nil, false
		}
	}
	return td, path, true
}
