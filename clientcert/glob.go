package clientcert

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Glob syntax, shared by every glob-valued field of the policy:
//
//	*   matches any run of characters, including none
//	?   matches exactly one character (one UTF-8 code point)
//	\c  matches the character c literally (so \* is a star, \\ a backslash)
//
// Every other character matches itself. A field may declare a separator
// byte (san_dns uses '.'): then neither * nor ? matches it, so
// "*.example.com" matches exactly one DNS label in front of example.com,
// like a certificate wildcard. A field may fold ASCII case (san_dns again):
// then A-Z and a-z are the same character.
//
// A glob is compiled once at provision time. Matching never allocates and
// takes O(len(pattern) * len(subject)) time in the worst case, linear for
// the usual shapes (exact, prefix*, *suffix).

// globOp is the kind of one compiled glob token.
type globOp uint8

const (
	opLit  globOp = iota // a run of literal bytes
	opOne                // ?: one character
	opStar               // *: any run of characters
)

type globTok struct {
	op  globOp
	lit string // for opLit; lower-cased when the glob folds case
}

// globShape selects a fast path for common patterns.
type globShape uint8

const (
	shapeGeneral globShape = iota
	shapeExact             // no wildcard: lit must equal the subject
	shapePrefix            // lit followed by one trailing *
	shapeAny               // a lone *: everything (without separator) matches
)

// glob is a compiled glob pattern. The zero value matches only the empty
// string.
type glob struct {
	pattern string // as written, for messages
	toks    []globTok
	shape   globShape
	lit     string // for shapeExact and shapePrefix
	sep     byte   // 0: none; otherwise * and ? never match this byte
	fold    bool   // ASCII case-insensitive
}

// compileGlob compiles pattern. sep is the separator byte (0 for none);
// fold makes matching ASCII case-insensitive.
func compileGlob(pattern string, sep byte, fold bool) (glob, error) {
	g := glob{pattern: pattern, sep: sep, fold: fold}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			g.toks = append(g.toks, globTok{op: opLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '\\':
			i++
			if i == len(pattern) {
				return glob{}, fmt.Errorf("glob %q ends with an unfinished escape '\\'", pattern)
			}
			c = pattern[i]
			if fold {
				c = lower(c)
			}
			lit.WriteByte(c)
		case '*':
			flush()
			if n := len(g.toks); n > 0 && g.toks[n-1].op == opStar {
				continue // ** is the same as *
			}
			g.toks = append(g.toks, globTok{op: opStar})
		case '?':
			flush()
			g.toks = append(g.toks, globTok{op: opOne})
		default:
			if fold {
				c = lower(c)
			}
			lit.WriteByte(c)
		}
	}
	flush()

	switch {
	case len(g.toks) == 0:
		g.shape = shapeExact
	case len(g.toks) == 1 && g.toks[0].op == opLit:
		g.shape, g.lit = shapeExact, g.toks[0].lit
	case len(g.toks) == 1 && g.toks[0].op == opStar && sep == 0:
		g.shape = shapeAny
	case len(g.toks) == 2 && g.toks[0].op == opLit && g.toks[1].op == opStar && sep == 0:
		g.shape, g.lit = shapePrefix, g.toks[0].lit
	}
	return g, nil
}

// String returns the pattern as written.
func (g *glob) String() string { return g.pattern }

// match reports whether s matches the glob.
func (g *glob) match(s string) bool { return globMatch(g, s) }

// matchBytes reports whether b matches the glob.
func (g *glob) matchBytes(b []byte) bool { return globMatch(g, b) }

// globMatch is the allocation-free matcher behind match and matchBytes.
//
// It is the classic wildcard algorithm that remembers only the most recent
// star: when a later token fails, the last star absorbs one more character
// and matching resumes after it. Remembering one star suffices because any
// match that would need an earlier star to absorb more can give those
// characters to the later star instead. With a separator, stars and ? never
// absorb the separator, so separators in the subject must line up with
// literal separators in the pattern, and the argument holds label by label.
func globMatch[T ~string | ~[]byte](g *glob, s T) bool {
	switch g.shape {
	case shapeExact:
		return len(s) == len(g.lit) && hasPrefixAt(s, 0, g.lit, g.fold)
	case shapePrefix:
		return hasPrefixAt(s, 0, g.lit, g.fold)
	case shapeAny:
		return true
	}
	toks := g.toks
	ti, si := 0, 0
	starTi, starSi := -1, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.op {
			case opStar:
				if ti == len(toks)-1 && g.sep == 0 {
					return true // a trailing star takes the rest
				}
				starTi, starSi = ti, si
				ti++
				continue
			case opLit:
				if hasPrefixAt(s, si, t.lit, g.fold) {
					si += len(t.lit)
					ti++
					continue
				}
			case opOne:
				if si < len(s) && (g.sep == 0 || s[si] != g.sep) {
					si += charLen(s, si)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		// Mismatch: let the last star absorb one more character.
		if starTi < 0 || starSi >= len(s) || (g.sep != 0 && s[starSi] == g.sep) {
			return false
		}
		starSi += charLen(s, starSi)
		ti, si = starTi+1, starSi
	}
}

// hasPrefixAt reports whether s[i:] begins with lit. When fold is set, lit is
// already lower-case and s is lower-cased byte by byte (ASCII only).
func hasPrefixAt[T ~string | ~[]byte](s T, i int, lit string, fold bool) bool {
	if len(s)-i < len(lit) {
		return false
	}
	if !fold {
		// For []byte the compiler compares without converting.
		return string(s[i:i+len(lit)]) == lit
	}
	for k := 0; k < len(lit); k++ {
		if lower(s[i+k]) != lit[k] {
			return false
		}
	}
	return true
}

// charLen returns the length in bytes of the UTF-8 character at s[i]
// (1 for an invalid byte, like utf8.DecodeRune).
func charLen[T ~string | ~[]byte](s T, i int) int {
	if s[i] < utf8.RuneSelf {
		return 1
	}
	var buf [utf8.UTFMax]byte
	n := copy(buf[:], s[i:])
	_, size := utf8.DecodeRune(buf[:n])
	return size
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + ('a' - 'A')
	}
	return c
}
