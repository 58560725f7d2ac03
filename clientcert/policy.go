package clientcert

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/tlsresume/caddy-tlsresume/internal/certid"
)

// Policy describes the client certificates it accepts. Both the
// `client_cert` HTTP matcher and the `client_cert` TLS client-auth verifier
// carry one.
//
// The values of one field are alternatives (any may match); the fields
// present must all match. A connection without a client certificate never
// matches. A policy with no field at all matches every client certificate
// it is allowed to look at (see AllowUnverified).
//
// Glob values use `*` for any run of characters (including `/`, except in
// san_dns), `?` for one character and `\` to escape the next character.
type Policy struct {
	// Distinguished-name patterns for the certificate's subject. Each value
	// is a comma-separated list of ATTRIBUTE=GLOB terms that must all hold,
	// e.g. `CN=api-*, O=Example Corp`. ATTRIBUTE is one of CN, O, OU, C, L,
	// ST, STREET, POSTALCODE, SERIALNUMBER, DC, UID, EMAILADDRESS, TITLE,
	// GIVENNAME, SURNAME (any case) or a dotted OID; a term holds when the
	// subject has an attribute of that type whose value matches the glob
	// (case-sensitive). Write `\,` for a comma inside a value. Attribute
	// order and other attributes do not matter.
	Subject []string `json:"subject,omitempty"`

	// Distinguished-name patterns for the certificate's issuer (the CA that
	// signed the leaf), in the same syntax as subject.
	Issuer []string `json:"issuer,omitempty"`

	// Globs for DNS-name SANs, compared case-insensitively. Here `*` and
	// `?` never match a dot, so `*.example.com` matches one label before
	// example.com, as a certificate wildcard would.
	SANDNS []string `json:"san_dns,omitempty"`

	// Globs for URI SANs, compared case-sensitively with the URI exactly as
	// the certificate spells it.
	SANURI []string `json:"san_uri,omitempty"`

	// Globs for email-address (rfc822Name) SANs, compared case-sensitively.
	SANEmail []string `json:"san_email,omitempty"`

	// IP-address SANs: CIDR prefixes (`10.0.0.0/8`, `2001:db8::/32`) or
	// single addresses. IPv4-mapped IPv6 addresses count as IPv4.
	SANIP []string `json:"san_ip,omitempty"`

	// SPIFFE ID patterns, `spiffe://<trust domain>[/<path glob>]`, e.g.
	// `spiffe://prod.example.org/ns/payments/*`. The trust domain is exact;
	// the path is a glob whose `*` also spans `/`. The certificate's SPIFFE
	// ID is its URI SAN, parsed per the SPIFFE ID specification: a
	// certificate whose only URI SAN is not a valid SPIFFE ID, or which has
	// more than one URI SAN (an X509-SVID has exactly one), has no SPIFFE ID
	// and never matches.
	SPIFFEID []string `json:"spiffe_id,omitempty"`

	// SHA-256 fingerprints of the leaf certificate's DER encoding: 64 hex
	// digits in any case; colons and spaces between them are ignored, so
	// OpenSSL's colon-separated pairs work as is.
	Fingerprint []string `json:"fingerprint,omitempty"`

	// Serial numbers of the leaf: decimal, `0x`-prefixed hex, or
	// colon-separated hex pairs as OpenSSL prints them, optionally after a
	// minus sign (for non-conforming certificates); the same spellings the
	// revoke admin API takes.
	Serial []string `json:"serial,omitempty"`

	// The least time the certificate must remain valid (until its NotAfter)
	// for the policy to match, e.g. `168h` or `7d`. Useful to route clients
	// with soon-expiring certificates to a warning.
	MinRemainingValidity caddy.Duration `json:"min_remaining_validity,omitempty"`

	// Also look at client certificates the TLS handshake did not verify
	// against a trust pool (client_auth mode `request` or `require`).
	// By default only verified certificates are considered, and an
	// unverified one never matches: its subject, SANs and SPIFFE ID are
	// whatever the client chose to write. Enable only when another layer
	// (for instance fingerprint pins in this same policy) authenticates the
	// client.
	AllowUnverified bool `json:"allow_unverified,omitempty"`
}

// Field names, as they appear in JSON, the Caddyfile and error messages.
const (
	fieldSubject              = "subject"
	fieldIssuer               = "issuer"
	fieldSANDNS               = "san_dns"
	fieldSANURI               = "san_uri"
	fieldSANEmail             = "san_email"
	fieldSANIP                = "san_ip"
	fieldSPIFFEID             = "spiffe_id"
	fieldFingerprint          = "fingerprint"
	fieldSerial               = "serial"
	fieldMinRemainingValidity = "min_remaining_validity"
	fieldAllowUnverified      = "allow_unverified"
)

// compiledPolicy is a Policy with every value parsed and compiled. Its
// evaluation allocates nothing.
type compiledPolicy struct {
	subject      []dnPattern
	issuer       []dnPattern
	sanDNS       []glob
	sanURI       []glob
	sanEmail     []glob
	sanIP        []netip.Prefix
	spiffe       []spiffePattern
	fingerprints [][sha256.Size]byte
	serials      []*big.Int
	minRemaining time.Duration

	allowUnverified bool

	// refusals holds one prebuilt error per field, so that the verifier
	// can refuse without allocating.
	refusals map[string]error
	// errNoCert and errUnverified are the other refusals.
	errNoCert, errUnverified error
}

// compile parses and compiles every value of p. Errors name the field and
// the offending value.
func (p *Policy) compile() (*compiledPolicy, error) {
	c := &compiledPolicy{
		minRemaining:    time.Duration(p.MinRemainingValidity),
		allowUnverified: p.AllowUnverified,
		refusals:        make(map[string]error),
	}
	var errs []error
	fail := func(field, value string, err error) {
		errs = append(errs, fmt.Errorf("client_cert: %s %q: %w", field, value, err))
	}
	for _, f := range p.listFields() {
		// An explicitly empty list would silently drop the condition.
		if f.vals != nil && len(f.vals) == 0 {
			errs = append(errs, fmt.Errorf("client_cert: %s is an empty list; omit the field to leave it unconstrained", f.name))
		}
	}
	nonEmpty := func(field, v string) bool {
		if strings.TrimSpace(v) == "" {
			fail(field, v, errors.New("empty value"))
			return false
		}
		return true
	}
	for _, v := range p.Subject {
		if dp, err := compileDNPattern(v); err != nil {
			fail(fieldSubject, v, err)
		} else {
			c.subject = append(c.subject, dp)
		}
	}
	for _, v := range p.Issuer {
		if dp, err := compileDNPattern(v); err != nil {
			fail(fieldIssuer, v, err)
		} else {
			c.issuer = append(c.issuer, dp)
		}
	}
	globs := func(field string, vals []string, sep byte, fold bool) []glob {
		var out []glob
		for _, v := range vals {
			if !nonEmpty(field, v) {
				continue
			}
			g, err := compileGlob(v, sep, fold)
			if err != nil {
				fail(field, v, err)
				continue
			}
			out = append(out, g)
		}
		return out
	}
	c.sanDNS = globs(fieldSANDNS, p.SANDNS, '.', true)
	c.sanURI = globs(fieldSANURI, p.SANURI, 0, false)
	c.sanEmail = globs(fieldSANEmail, p.SANEmail, 0, false)
	for _, v := range p.SANIP {
		if pfx, err := compileIPPrefix(v); err != nil {
			fail(fieldSANIP, v, err)
		} else {
			c.sanIP = append(c.sanIP, pfx)
		}
	}
	for _, v := range p.SPIFFEID {
		if sp, err := compileSPIFFEPattern(v); err != nil {
			fail(fieldSPIFFEID, v, err)
		} else {
			c.spiffe = append(c.spiffe, sp)
		}
	}
	for _, v := range p.Fingerprint {
		if fp, err := certid.ParseFingerprint(v); err != nil {
			fail(fieldFingerprint, v, err)
		} else {
			c.fingerprints = append(c.fingerprints, [sha256.Size]byte(fp))
		}
	}
	for _, v := range p.Serial {
		if n, err := certid.ParseSerial(v); err != nil {
			fail(fieldSerial, v, err)
		} else {
			c.serials = append(c.serials, n)
		}
	}
	if c.minRemaining < 0 {
		fail(fieldMinRemainingValidity, time.Duration(p.MinRemainingValidity).String(), errors.New("must not be negative"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	for _, f := range p.listFields() {
		if len(f.vals) > 0 {
			c.refusals[f.name] = &refusalError{Field: f.name, Want: append([]string(nil), f.vals...)}
		}
	}
	if c.minRemaining > 0 {
		c.refusals[fieldMinRemainingValidity] = &refusalError{
			Field: fieldMinRemainingValidity, Want: []string{c.minRemaining.String()},
		}
	}
	c.errNoCert = &refusalError{Reason: "no client certificate"}
	c.errUnverified = &refusalError{Reason: "client certificate was not verified against a trust pool (allow_unverified is off)"}
	return c, nil
}

type namedList struct {
	name string
	vals []string
}

// listFields returns the list-valued fields with their names.
func (p *Policy) listFields() []namedList {
	return []namedList{
		{fieldSubject, p.Subject}, {fieldIssuer, p.Issuer}, {fieldSANDNS, p.SANDNS},
		{fieldSANURI, p.SANURI}, {fieldSANEmail, p.SANEmail}, {fieldSANIP, p.SANIP},
		{fieldSPIFFEID, p.SPIFFEID}, {fieldFingerprint, p.Fingerprint}, {fieldSerial, p.Serial},
	}
}

// evaluate applies the policy to a leaf certificate. It returns "" when the
// certificate satisfies every field, otherwise the name of the first field
// (cheapest checks first) that it does not satisfy. now is only read when
// min_remaining_validity is set.
func (c *compiledPolicy) evaluate(leaf *x509.Certificate, now time.Time) string {
	if len(c.serials) > 0 && !c.matchSerial(leaf) {
		return fieldSerial
	}
	if c.minRemaining > 0 && leaf.NotAfter.Sub(now) < c.minRemaining {
		return fieldMinRemainingValidity
	}
	if len(c.issuer) > 0 && !anyDN(c.issuer, leaf, true) {
		return fieldIssuer
	}
	if len(c.subject) > 0 && !anyDN(c.subject, leaf, false) {
		return fieldSubject
	}
	if len(c.spiffe) > 0 && !c.matchSPIFFE(leaf) {
		return fieldSPIFFEID
	}
	if len(c.sanDNS) > 0 && !anyStringGlob(c.sanDNS, leaf.DNSNames) {
		return fieldSANDNS
	}
	if len(c.sanEmail) > 0 && !anyStringGlob(c.sanEmail, leaf.EmailAddresses) {
		return fieldSANEmail
	}
	if len(c.sanIP) > 0 && !certIPInPrefixes(leaf, c.sanIP) {
		return fieldSANIP
	}
	if len(c.sanURI) > 0 && !c.matchURI(leaf) {
		return fieldSANURI
	}
	if len(c.fingerprints) > 0 && !c.matchFingerprint(leaf) {
		return fieldFingerprint
	}
	return ""
}

// needsTime reports whether evaluate reads its now argument.
func (c *compiledPolicy) needsTime() bool { return c.minRemaining > 0 }

func (c *compiledPolicy) matchSerial(leaf *x509.Certificate) bool {
	if leaf.SerialNumber == nil {
		return false
	}
	for _, s := range c.serials {
		if leaf.SerialNumber.Cmp(s) == 0 {
			return true
		}
	}
	return false
}

func anyDN(patterns []dnPattern, leaf *x509.Certificate, issuer bool) bool {
	name := &leaf.Subject
	if issuer {
		name = &leaf.Issuer
	}
	for i := range patterns {
		if patterns[i].match(name) {
			return true
		}
	}
	return false
}

func anyStringGlob(globs []glob, vals []string) bool {
	for _, v := range vals {
		for i := range globs {
			if globs[i].match(v) {
				return true
			}
		}
	}
	return false
}

func (c *compiledPolicy) matchSPIFFE(leaf *x509.Certificate) bool {
	uri, ok := soleURISAN(leaf)
	if !ok {
		return false
	}
	// The trust domain's characters are not checked here: matchParsed
	// compares it with validated trust domains only.
	td, path, ok := splitSPIFFEID(uri)
	if !ok {
		return false
	}
	for i := range c.spiffe {
		if c.spiffe[i].matchParsed(td, path) {
			return true
		}
	}
	return false
}

func (c *compiledPolicy) matchURI(leaf *x509.Certificate) bool {
	it := newURISANs(leaf)
	for {
		uri, ok := it.next()
		if !ok {
			return false
		}
		for i := range c.sanURI {
			if c.sanURI[i].matchBytes(uri) {
				return true
			}
		}
	}
}

func (c *compiledPolicy) matchFingerprint(leaf *x509.Certificate) bool {
	sum := sha256.Sum256(leaf.Raw)
	for i := range c.fingerprints {
		if sum == c.fingerprints[i] {
			return true
		}
	}
	return false
}

// refusalError is the error the client_cert verifier returns when a client
// certificate does not satisfy its policy. It is built at provision time.
type refusalError struct {
	// Field is the policy field the certificate did not satisfy; empty
	// when Reason says why no field was evaluated.
	Field string
	// Want lists the field's configured values.
	Want []string
	// Reason explains a refusal that is not about one field.
	Reason string
}

func (e *refusalError) Error() string {
	if e.Field == "" {
		return "client_cert policy refused the connection: " + e.Reason
	}
	return fmt.Sprintf("client_cert policy refused the client certificate: %s does not match any of %q", e.Field, e.Want)
}
