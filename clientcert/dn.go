package clientcert

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strconv"
	"strings"
)

// Distinguished-name patterns (the subject and issuer fields).
//
// A pattern is a comma-separated list of ATTRIBUTE=GLOB terms, for example
//
//	CN=api-*, O=Example Corp, OU=payments
//
// and matches a name when every term holds; a term holds when the name has
// at least one attribute of that type whose value matches the glob. Other
// attributes of the name, and their order, do not matter. Attribute types
// are the short names below (case-insensitive) or a dotted OID such as
// 2.5.4.97. Values are compared case-sensitively; '\,' is a literal comma
// and the other glob escapes apply. Spaces around names and values are
// ignored. Values are compared with the attribute values parsed from the
// certificate, never with a formatted DN string.

// dnAttributeTypes maps the accepted short names to attribute type OIDs
// (RFC 4514 section 3, plus the common extras OpenSSL prints).
var dnAttributeTypes = map[string]asn1.ObjectIdentifier{
	"CN":           {2, 5, 4, 3},
	"SURNAME":      {2, 5, 4, 4},
	"SERIALNUMBER": {2, 5, 4, 5},
	"C":            {2, 5, 4, 6},
	"L":            {2, 5, 4, 7},
	"ST":           {2, 5, 4, 8},
	"S":            {2, 5, 4, 8},
	"STREET":       {2, 5, 4, 9},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"TITLE":        {2, 5, 4, 12},
	"POSTALCODE":   {2, 5, 4, 17},
	"GIVENNAME":    {2, 5, 4, 42},
	"GN":           {2, 5, 4, 42},
	"UID":          {0, 9, 2342, 19200300, 100, 1, 1},
	"DC":           {0, 9, 2342, 19200300, 100, 1, 25},
	"EMAILADDRESS": {1, 2, 840, 113549, 1, 9, 1},
	"E":            {1, 2, 840, 113549, 1, 9, 1},
}

type dnTerm struct {
	oid   asn1.ObjectIdentifier
	value glob
}

// dnPattern is a compiled distinguished-name pattern.
type dnPattern struct {
	raw   string
	terms []dnTerm
}

// compileDNPattern compiles one subject or issuer value.
func compileDNPattern(p string) (dnPattern, error) {
	dp := dnPattern{raw: p}
	terms := splitUnescaped(p, ',')
	for _, term := range terms {
		term = strings.TrimSpace(term)
		if term == "" {
			return dnPattern{}, fmt.Errorf("distinguished-name pattern %q has an empty attribute term", p)
		}
		eq := strings.IndexByte(term, '=')
		if eq < 0 {
			return dnPattern{}, fmt.Errorf("distinguished-name pattern %q: term %q is not ATTRIBUTE=VALUE", p, term)
		}
		name := strings.TrimSpace(term[:eq])
		value := strings.TrimSpace(term[eq+1:])
		oid, err := parseAttributeType(name)
		if err != nil {
			return dnPattern{}, fmt.Errorf("distinguished-name pattern %q: %v", p, err)
		}
		if value == "" {
			return dnPattern{}, fmt.Errorf("distinguished-name pattern %q: attribute %s has an empty value (use %s=* to require any value)", p, name, name)
		}
		g, err := compileGlob(value, 0, false)
		if err != nil {
			return dnPattern{}, fmt.Errorf("distinguished-name pattern %q: attribute %s: %v", p, name, err)
		}
		dp.terms = append(dp.terms, dnTerm{oid: oid, value: g})
	}
	return dp, nil
}

// parseAttributeType resolves a short name or dotted OID.
func parseAttributeType(name string) (asn1.ObjectIdentifier, error) {
	if name == "" {
		return nil, fmt.Errorf("missing attribute type before '='")
	}
	if oid, ok := dnAttributeTypes[strings.ToUpper(name)]; ok {
		return oid, nil
	}
	if c := name[0]; c >= '0' && c <= '9' {
		parts := strings.Split(name, ".")
		if len(parts) < 2 {
			return nil, fmt.Errorf("attribute type %q: an OID needs at least two arcs", name)
		}
		oid := make(asn1.ObjectIdentifier, len(parts))
		for i, part := range parts {
			n, err := strconv.ParseUint(part, 10, 31)
			if err != nil || part == "" || (len(part) > 1 && part[0] == '0') {
				return nil, fmt.Errorf("attribute type %q is not a dotted OID", name)
			}
			oid[i] = int(n)
		}
		return oid, nil
	}
	return nil, fmt.Errorf("unknown attribute type %q (use CN, O, OU, C, L, ST, STREET, POSTALCODE, SERIALNUMBER, DC, UID, EMAILADDRESS, TITLE, GIVENNAME, SURNAME or a dotted OID)", name)
}

// match reports whether every term of the pattern holds for name, which
// must come from a parsed certificate (its Names lists every attribute).
func (dp *dnPattern) match(name *pkix.Name) bool {
	for i := range dp.terms {
		if !dp.terms[i].holds(name) {
			return false
		}
	}
	return true
}

func (t *dnTerm) holds(name *pkix.Name) bool {
	for i := range name.Names {
		atv := &name.Names[i]
		if !oidEqual(atv.Type, t.oid) {
			continue
		}
		if s, ok := atv.Value.(string); ok && t.value.match(s) {
			return true
		}
	}
	return false
}

// splitUnescaped splits s at every sep that is not preceded by an escaping
// backslash; the escapes stay in the parts (the glob compiler reads them).
func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
