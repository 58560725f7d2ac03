package clientcert

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// oidSubjectAltName is id-ce-subjectAltName (RFC 5280, 4.2.1.6).
var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// tagURI is the GeneralName choice uniformResourceIdentifier: [6] IA5String.
var tagURI = cbasn1.Tag(6).ContextSpecific()

// uriSANs iterates over the URI SANs of a certificate exactly as the
// certificate spells them. x509.Certificate.URIs holds them parsed by
// net/url, which normalises (the scheme is lower-cased, escapes decoded) and
// would need url.URL.String, which allocates, to compare; reading the
// extension again with cryptobyte costs no allocation.
//
// x509.ParseCertificate has already refused a malformed SAN extension, so a
// decoding failure here only ends the iteration early.
type uriSANs struct {
	seq cryptobyte.String
}

// newURISANs positions an iterator over cert's URI SANs.
func newURISANs(cert *x509.Certificate) uriSANs {
	for i := range cert.Extensions {
		ext := &cert.Extensions[i]
		if !oidEqual(ext.Id, oidSubjectAltName) {
			continue
		}
		in := cryptobyte.String(ext.Value)
		var seq cryptobyte.String
		if !in.ReadASN1(&seq, cbasn1.SEQUENCE) {
			return uriSANs{}
		}
		return uriSANs{seq: seq}
	}
	return uriSANs{}
}

// next returns the next URI SAN, or ok == false at the end.
func (it *uriSANs) next() (uri []byte, ok bool) {
	for !it.seq.Empty() {
		var v cryptobyte.String
		var tag cbasn1.Tag
		if !it.seq.ReadAnyASN1(&v, &tag) {
			it.seq = nil
			return nil, false
		}
		if tag == tagURI {
			return v, true
		}
	}
	return nil, false
}

// soleURISAN returns the certificate's URI SAN when it has exactly one.
// The X509-SVID specification requires an SVID to carry exactly one URI SAN
// (its SPIFFE ID); a certificate with several is not an SVID at all, so
// spiffe_id never matches it, whatever the other URIs are.
func soleURISAN(cert *x509.Certificate) ([]byte, bool) {
	if len(cert.URIs) != 1 {
		// cert.URIs has one entry per URI SAN (x509 refuses a
		// certificate whose URI SAN does not parse): a quick answer
		// for the common case of zero or several.
		return nil, false
	}
	it := newURISANs(cert)
	first, ok := it.next()
	if !ok {
		return nil, false
	}
	if _, more := it.next(); more {
		return nil, false
	}
	return first, true
}

// compileIPPrefix compiles a san_ip value: a CIDR prefix ("10.0.0.0/8",
// "2001:db8::/32") or a single address (as /32 or /128). IPv4-mapped IPv6
// values are taken as their IPv4 address.
func compileIPPrefix(v string) (netip.Prefix, error) {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR prefix: %v", v, err)
		}
		if p.Addr().Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", v)
		}
		if p.Addr().Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least 96 bits", v)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix: %v", v, err)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q: zones are not allowed", v)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// certIPInPrefixes reports whether any IP SAN of cert lies in any prefix.
func certIPInPrefixes(cert *x509.Certificate, prefixes []netip.Prefix) bool {
	for _, ip := range cert.IPAddresses {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		a = a.Unmap()
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}

// oidEqual is asn1.ObjectIdentifier.Equal comparing from the last arc,
// where object identifiers of one family differ, so most mismatches cost
// one comparison.
func oidEqual(a, b asn1.ObjectIdentifier) bool {
	if len(a) != len(b) {
		return false
	}
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
