package clientcert

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

func init() {
	caddy.RegisterModule(Verifier{})
}

// Verifier enforces a client-certificate policy in the TLS handshake: a
// client whose certificate does not satisfy it never gets a connection. It
// takes the same fields as the `client_cert` HTTP matcher, with the same
// meaning.
//
// Caddy runs client-auth verifiers from tls.Config.VerifyConnection, which
// Go calls on full and on resumed handshakes alike, so a resumed session is
// checked against the current policy too. A refusal names the field that
// did not match.
//
// The verifier looks at the first verified chain's leaf. When the
// connection policy does not verify client certificates (client_auth mode
// `request` or `require`) there is no verified chain and the verifier
// refuses, unless allow_unverified is set. A handshake without a client
// certificate is refused.
type Verifier struct {
	Policy

	compiled *compiledPolicy
}

// CaddyModule returns the Caddy module information.
func (Verifier) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "tls.client_auth.verifier.client_cert",
		New: func() caddy.Module { return new(Verifier) },
	}
}

// Provision compiles the policy.
func (v *Verifier) Provision(caddy.Context) error {
	c, err := v.Policy.compile()
	if err != nil {
		return err
	}
	v.compiled = c
	return nil
}

// VerifyClientCertificate returns nil if the client's certificate satisfies
// the policy, otherwise a *refusalError naming the field that did not match.
// On its usual path (a verified chain) it does not allocate.
func (v *Verifier) VerifyClientCertificate(rawCerts [][]byte, verifiedChains [][]*x509.Certificate) error {
	c := v.compiled
	var leaf *x509.Certificate
	switch {
	case len(verifiedChains) > 0 && len(verifiedChains[0]) > 0:
		leaf = verifiedChains[0][0]
	case len(rawCerts) == 0:
		return c.errNoCert
	case !c.allowUnverified:
		return c.errUnverified
	default:
		// Opted in to unverified certificates: parse the leaf (this
		// allocates, which this mode accepts).
		var err error
		leaf, err = x509.ParseCertificate(rawCerts[0])
		if err != nil {
			return fmt.Errorf("client_cert policy: parsing client certificate: %w", err)
		}
	}
	var now time.Time
	if c.needsTime() {
		now = time.Now()
	}
	if field := c.evaluate(leaf, now); field != "" {
		return c.refusals[field]
	}
	return nil
}

// UnmarshalCaddyfile sets up the verifier from Caddyfile tokens, inside a
// client_auth block. Syntax:
//
//	verifier client_cert [<field> <values...>] {
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
// The fields are those of the client_cert matcher.
func (v *Verifier) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return v.Policy.unmarshalCaddyfile(d)
}

// Interface guards
var (
	_ caddy.Provisioner                  = (*Verifier)(nil)
	_ caddyfile.Unmarshaler              = (*Verifier)(nil)
	_ caddytls.ClientCertificateVerifier = (*Verifier)(nil)
)
