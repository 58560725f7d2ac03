package clientcert

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// unmarshalCaddyfile fills p from the tokens of a `client_cert` matcher or
// verifier. The dispenser is positioned before the module name. Syntax:
//
//	client_cert [<field> <values...>] {
//		subject     <ATTR=glob>...       # one line = one DN pattern; repeat for alternatives
//		issuer      <ATTR=glob>...
//		san_dns     <glob>...
//		san_uri     <glob>...
//		san_email   <glob>...
//		san_ip      <cidr|ip>...
//		spiffe_id   <spiffe://trust.domain/path-glob>...
//		fingerprint <sha256-hex>...
//		serial      <decimal|0xhex|hex:pairs>...
//		min_remaining_validity <duration>
//		allow_unverified
//	}
//
// The one-line form takes a single field, e.g.
// `client_cert spiffe_id spiffe://example.org/ns/web/*`. Every value is
// compiled before returning, so a mistake is reported with its position.
func (p *Policy) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	for d.Next() { // the module name; repeated when a matcher set names it twice
		if d.NextArg() {
			if err := p.unmarshalField(d); err != nil {
				return err
			}
		}
		for nesting := d.Nesting(); d.NextBlock(nesting); {
			if err := p.unmarshalField(d); err != nil {
				return err
			}
		}
	}
	if _, err := p.compile(); err != nil {
		return d.WrapErr(err)
	}
	return nil
}

// unmarshalField parses one field line; the field name is the current
// token. The line's values are compiled at once, so that a mistake is
// reported at its own line.
func (p *Policy) unmarshalField(d *caddyfile.Dispenser) error {
	field := d.Val()
	args := d.RemainingArgs()
	switch field {
	case fieldSubject, fieldIssuer:
		if len(args) == 0 {
			return d.Errf("client_cert: %s needs at least one ATTRIBUTE=VALUE term", field)
		}
		// The terms of one line form one pattern; see dn.go.
		args = []string{strings.Join(args, ", ")}
	case fieldMinRemainingValidity:
		if len(args) != 1 {
			return d.Errf("client_cert: %s takes exactly one duration", field)
		}
	case fieldAllowUnverified:
		if len(args) != 0 {
			return d.Errf("client_cert: %s takes no value", field)
		}
		args = []string{"true"}
	default:
		if len(args) == 0 && isListField(field) {
			return d.Errf("client_cert: %s needs at least one value", field)
		}
	}
	var line Policy
	if err := line.add(field, args); err != nil {
		return d.WrapErr(err)
	}
	if _, err := line.compile(); err != nil {
		return d.WrapErr(err)
	}
	if err := p.add(field, args); err != nil {
		return d.WrapErr(err)
	}
	return nil
}

// isListField reports whether field takes a list of alternatives.
func isListField(field string) bool {
	switch field {
	case fieldSubject, fieldIssuer, fieldSANDNS, fieldSANURI, fieldSANEmail,
		fieldSANIP, fieldSPIFFEID, fieldFingerprint, fieldSerial:
		return true
	}
	return false
}

// add appends vals to field. Scalar fields (min_remaining_validity,
// allow_unverified) take exactly one value and may be set once.
func (p *Policy) add(field string, vals []string) error {
	if isListField(field) && len(vals) == 0 {
		return fmt.Errorf("client_cert: %s needs at least one value", field)
	}
	switch field {
	case fieldSubject:
		p.Subject = append(p.Subject, vals...)
	case fieldIssuer:
		p.Issuer = append(p.Issuer, vals...)
	case fieldSANDNS:
		p.SANDNS = append(p.SANDNS, vals...)
	case fieldSANURI:
		p.SANURI = append(p.SANURI, vals...)
	case fieldSANEmail:
		p.SANEmail = append(p.SANEmail, vals...)
	case fieldSANIP:
		p.SANIP = append(p.SANIP, vals...)
	case fieldSPIFFEID:
		p.SPIFFEID = append(p.SPIFFEID, vals...)
	case fieldFingerprint:
		p.Fingerprint = append(p.Fingerprint, vals...)
	case fieldSerial:
		p.Serial = append(p.Serial, vals...)
	case fieldMinRemainingValidity:
		if len(vals) != 1 {
			return fmt.Errorf("client_cert: %s takes exactly one duration, got %d values", field, len(vals))
		}
		if p.MinRemainingValidity != 0 {
			return fmt.Errorf("client_cert: %s is set twice", field)
		}
		dur, err := caddy.ParseDuration(vals[0])
		if err != nil {
			return fmt.Errorf("client_cert: %s %q: %v", field, vals[0], err)
		}
		if dur <= 0 {
			return fmt.Errorf("client_cert: %s %q: must be positive", field, vals[0])
		}
		p.MinRemainingValidity = caddy.Duration(dur)
	case fieldAllowUnverified:
		if len(vals) != 1 {
			return fmt.Errorf("client_cert: %s takes one boolean, got %d values", field, len(vals))
		}
		b, err := strconv.ParseBool(vals[0])
		if err != nil {
			return fmt.Errorf("client_cert: %s %q: not a boolean", field, vals[0])
		}
		p.AllowUnverified = b
	default:
		return fmt.Errorf("client_cert: unknown field %q (want one of subject, issuer, san_dns, san_uri, san_email, san_ip, spiffe_id, fingerprint, serial, min_remaining_validity, allow_unverified)", field)
	}
	return nil
}

// policyFromMap builds a policy from the map a CEL expression passes, e.g.
// client_cert({'spiffe_id': 'spiffe://example.org/*', 'issuer': ['CN=A', 'CN=B']}).
// Each string of subject and issuer is a whole pattern, as in JSON.
func policyFromMap(m map[string][]string) (Policy, error) {
	var p Policy
	for field, vals := range m {
		if err := p.add(field, vals); err != nil {
			return Policy{}, err
		}
	}
	return p, nil
}
