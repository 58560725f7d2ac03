package clientcert

import (
	"crypto/x509"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types/ref"
)

func init() {
	caddy.RegisterModule(MatchClientCert{})
}

// MatchClientCert matches requests by the client certificate of their TLS
// connection: its subject and issuer names, SANs, SPIFFE ID, SHA-256
// fingerprint, serial number and remaining validity. Values of one field are
// alternatives; all fields given must match. A request without a client
// certificate does not match, and neither does one whose certificate the
// handshake did not verify against the connection policy's trust pool,
// unless allow_unverified is set.
//
// The matcher reads what the handshake established (the verified chain of
// the connection, restored from the ticket on a resumed connection), so it
// answers the same on full and resumed connections.
//
// In CEL expressions it is available as a function taking a map of field
// names to a string or a list of strings:
//
//	client_cert({'spiffe_id': 'spiffe://example.org/ns/payments/*', 'issuer': 'CN=Payments CA'})
type MatchClientCert struct {
	Policy

	compiled *compiledPolicy
}

// CaddyModule returns the Caddy module information.
func (MatchClientCert) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.matchers.client_cert",
		New: func() caddy.Module { return new(MatchClientCert) },
	}
}

// Provision compiles the policy.
func (m *MatchClientCert) Provision(caddy.Context) error {
	c, err := m.Policy.compile()
	if err != nil {
		return err
	}
	m.compiled = c
	return nil
}

// Match returns true if r's client certificate satisfies the policy.
func (m *MatchClientCert) Match(r *http.Request) bool {
	ok, _ := m.MatchWithError(r)
	return ok
}

// MatchWithError returns true if r's client certificate satisfies the
// policy. It never returns an error: a certificate that does not satisfy
// the policy simply does not match.
func (m *MatchClientCert) MatchWithError(r *http.Request) (bool, error) {
	leaf := requestLeaf(r, m.compiled.allowUnverified)
	if leaf == nil {
		return false, nil
	}
	var now time.Time
	if m.compiled.needsTime() {
		now = time.Now()
	}
	return m.compiled.evaluate(leaf, now) == "", nil
}

// requestLeaf returns the client's leaf certificate when the policy may
// look at it: the handshake verified it, or unverified certificates are
// allowed. It returns nil otherwise.
func requestLeaf(r *http.Request, allowUnverified bool) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil
	}
	if len(r.TLS.VerifiedChains) == 0 && !allowUnverified {
		return nil
	}
	return r.TLS.PeerCertificates[0]
}

// UnmarshalCaddyfile sets up the matcher from Caddyfile tokens. Syntax:
//
//	client_cert [<field> <values...>] {
//		subject     <ATTR=glob>...
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
// The terms of one subject (or issuer) line form one distinguished-name
// pattern whose terms must all hold; repeat the line to give alternatives.
// Every other field's values on one line, or over several lines, are
// alternatives.
func (m *MatchClientCert) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return m.Policy.unmarshalCaddyfile(d)
}

// CELLibrary exposes the matcher to CEL expressions as
// client_cert({'field': 'value' | ['value', ...], ...}).
func (MatchClientCert) CELLibrary(caddy.Context) (cel.Library, error) {
	return caddyhttp.CELMatcherImpl(
		"client_cert",
		"client_cert_matcher_request_map",
		[]*cel.Type{caddyhttp.CELTypeJSON},
		func(data ref.Val) (caddyhttp.RequestMatcherWithError, error) {
			fields, err := caddyhttp.CELValueToMapStrList(data)
			if err != nil {
				return nil, err
			}
			p, err := policyFromMap(fields)
			if err != nil {
				return nil, err
			}
			m := &MatchClientCert{Policy: p}
			if err := m.Provision(caddy.Context{}); err != nil {
				return nil, err
			}
			return m, nil
		},
	)
}

// Interface guards
var (
	_ caddy.Provisioner                 = (*MatchClientCert)(nil)
	_ caddyfile.Unmarshaler             = (*MatchClientCert)(nil)
	_ caddyhttp.RequestMatcherWithError = (*MatchClientCert)(nil)
	_ caddyhttp.CELLibraryProducer      = (*MatchClientCert)(nil)
)
