package clientcert

import (
	"regexp"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		sep     byte
		fold    bool
		yes, no []string
	}{
		{pattern: "", yes: []string{""}, no: []string{"a"}},
		{pattern: "abc", yes: []string{"abc"}, no: []string{"", "ab", "abcd", "ABC", "xabc"}},
		{pattern: "*", yes: []string{"", "a", "a/b.c", "é"}},
		{pattern: "**", yes: []string{"", "abc"}},
		{pattern: "api-*", yes: []string{"api-", "api-1", "api-x/y"}, no: []string{"api", "xapi-1", "API-1"}},
		{pattern: "*-prod", yes: []string{"-prod", "a-prod", "a/b-prod"}, no: []string{"a-prod2", "a-pro"}},
		{pattern: "a*b*c", yes: []string{"abc", "aXbYc", "abbbc", "acbc", "a-b-b-c"}, no: []string{"ab", "acb", "abcx", "xabc"}},
		{pattern: "a?c", yes: []string{"abc", "a/c", "aéc"}, no: []string{"ac", "abbc", "aé"}},
		{pattern: "?", yes: []string{"x", "é", "\xff"}, no: []string{"", "xy", "é!"}},
		{pattern: "*?", yes: []string{"x", "xyz", "é"}, no: []string{""}},
		{pattern: `a\*b`, yes: []string{"a*b"}, no: []string{"aXb", "ab"}},
		{pattern: `\\\?`, yes: []string{`\?`}, no: []string{`\x`}},
		{pattern: "/ns/payments/*", yes: []string{"/ns/payments/sa/api", "/ns/payments/"}, no: []string{"/ns/payments", "/ns/paymentsx/a"}},
		// DNS: separator '.' and case folding
		{pattern: "*.example.com", sep: '.', fold: true,
			yes: []string{"api.example.com", "API.Example.COM", "x-1.example.com"},
			no:  []string{"example.com", "a.b.example.com", "api.example.com.evil", "apiexample.com"}},
		{pattern: "api-*.example.com", sep: '.', fold: true,
			yes: []string{"api-1.example.com", "api-.example.com"},
			no:  []string{"api-1.x.example.com", "web-1.example.com"}},
		{pattern: "*", sep: '.', yes: []string{"", "localhost"}, no: []string{"a.b"}},
		{pattern: "*.*", sep: '.', yes: []string{"a.b", "."}, no: []string{"a.b.c", "ab"}},
		{pattern: "a?", sep: '.', yes: []string{"ab"}, no: []string{"a."}},
		{pattern: "API.example.com", sep: '.', fold: true, yes: []string{"api.EXAMPLE.com"}, no: []string{"api.example.co"}},
	} {
		g, err := compileGlob(tc.pattern, tc.sep, tc.fold)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", tc.pattern, err)
		}
		for _, s := range tc.yes {
			if !g.match(s) || !g.matchBytes([]byte(s)) {
				t.Errorf("glob %q (sep %q fold %v) should match %q", tc.pattern, tc.sep, tc.fold, s)
			}
		}
		for _, s := range tc.no {
			if g.match(s) || g.matchBytes([]byte(s)) {
				t.Errorf("glob %q (sep %q fold %v) should not match %q", tc.pattern, tc.sep, tc.fold, s)
			}
		}
	}
}

func TestGlobErrors(t *testing.T) {
	for _, p := range []string{`\`, `abc\`, `a*\`} {
		if _, err := compileGlob(p, 0, false); err == nil || !strings.Contains(err.Error(), "escape") {
			t.Errorf("compileGlob(%q) = %v, want an unfinished-escape error", p, err)
		}
	}
}

func TestGlobMatchDoesNotAllocate(t *testing.T) {
	g, err := compileGlob("*a?b*c*", '.', true)
	if err != nil {
		t.Fatal(err)
	}
	s := "xxAyBzzzzCend"
	b := []byte(s)
	if n := testing.AllocsPerRun(100, func() {
		g.match(s)
		g.matchBytes(b)
	}); n != 0 {
		t.Errorf("glob match allocates %v times", n)
	}
}

// globReference compiles the same pattern into a regular expression, an
// independent implementation to compare with.
func globReference(pattern string, sep byte, fold bool) (*regexp.Regexp, bool) {
	var re strings.Builder
	re.WriteString(`(?s)\A`)
	one, star := ".", ".*"
	if sep != 0 {
		cls := "[^" + regexp.QuoteMeta(string(rune(sep))) + "]"
		one, star = cls, cls+"*"
	}
	for i := 0; i < len(pattern); i++ {
		switch c := pattern[i]; c {
		case '\\':
			i++
			if i == len(pattern) {
				return nil, false
			}
			re.WriteString(regexp.QuoteMeta(foldByte(pattern[i], fold)))
		case '*':
			re.WriteString(star)
		case '?':
			re.WriteString(one)
		default:
			re.WriteString(regexp.QuoteMeta(foldByte(c, fold)))
		}
	}
	re.WriteString(`\z`)
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return nil, false // e.g. the pattern is not valid UTF-8
	}
	return rx, true
}

func foldByte(c byte, fold bool) string {
	if fold {
		c = lower(c)
	}
	return string([]byte{c})
}

func foldASCII(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = lower(b[i])
	}
	return string(b)
}

func FuzzGlob(f *testing.F) {
	for _, seed := range []struct {
		p, s string
	}{
		{"*", ""}, {"a*b?c", "aXXbYc"}, {"*.example.com", "api.example.com"},
		{`\*x`, "*x"}, {"?é*", "éé"}, {"a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaa"},
		{"/ns/*/sa/*", "/ns/payments/sa/api"}, {"*?*", "\xff\xfe"},
	} {
		f.Add(seed.p, seed.s, false, false)
		f.Add(seed.p, seed.s, true, true)
	}
	f.Fuzz(func(t *testing.T, pattern, subject string, useSep, fold bool) {
		if len(pattern) > 64 || len(subject) > 256 {
			return
		}
		var sep byte
		if useSep {
			sep = '.'
		}
		g, err := compileGlob(pattern, sep, fold)
		rx, ok := globReference(pattern, sep, fold)
		if err != nil {
			if ok {
				t.Fatalf("compileGlob(%q) failed (%v) but the pattern is valid", pattern, err)
			}
			return
		}
		got := g.match(subject)
		if got != g.matchBytes([]byte(subject)) {
			t.Fatalf("match and matchBytes disagree on %q / %q", pattern, subject)
		}
		if !ok {
			return // no reference for patterns that are not valid UTF-8
		}
		ref := subject
		if fold {
			ref = foldASCII(subject)
		}
		if want := rx.MatchString(ref); got != want {
			t.Fatalf("glob %q (sep %q, fold %v) on %q: got %v, reference %v", pattern, sep, fold, subject, got, want)
		}
	})
}
