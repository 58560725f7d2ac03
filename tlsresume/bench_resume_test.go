package tlsresume

import (
	"crypto/tls"
	"crypto/x509"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// BenchmarkResumedServerWork is the plugin's server-side work for one
// resumed mTLS connection, through the hooks as Go calls them: UnwrapSession
// on the offered ticket, VerifyConnection on the resumed state (with the
// VerifyConnection Caddy installs on client-auth policies), WrapSession for
// the next ticket. The TLS handshake itself (key exchange, records) is not
// in it: compare with BenchmarkHandshake for the whole.
func BenchmarkResumedServerWork(b *testing.B) {
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	state := captureSessionState(b)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		b.Run(versionShort(v), func(b *testing.B) {
			r, _ := testRing(b)
			holder := new(keyring.Holder)
			holder.Store(r)
			cfg := &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: set.Root.Pool()}
			clientAuth := &caddytls.ClientAuthentication{Mode: "require_and_verify"}
			if err := clientAuth.ConfigureTLSConfig(cfg); err != nil {
				b.Fatal(err)
			}
			pol := &caddytls.ConnectionPolicy{TLSConfig: cfg, ClientAuthentication: clientAuth}
			pb := benchBind(pol, holder)
			pb.now = func() time.Time { return t0.Add(time.Minute) }
			sni := "localhost"
			cs := tls.ConnectionState{ServerName: sni, Version: v}
			ss0, err := tls.ParseSessionState(state)
			if err != nil {
				b.Fatal(err)
			}
			ticket, err := cfg.WrapSession(cs, ss0)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ss, _ := cfg.UnwrapSession(ticket, cs)
				if ss == nil {
					b.Fatal("not resumed")
				}
				// What Go hands the later callbacks of a resumed connection.
				rcs := cs
				rcs.DidResume = true
				rcs.PeerCertificates, rcs.VerifiedChains = sessionFields(ss)
				if err := cfg.VerifyConnection(rcs); err != nil {
					b.Fatal(err)
				}
				if ticket, err = cfg.WrapSession(rcs, ss); err != nil || len(ticket) < 2 {
					b.Fatal("no ticket", err)
				}
			}
		})
	}
}

// sessionFields reads ss's private peer certificates and verified chains,
// as Go copies them onto a resumed connection (benchmark scaffolding only).
func sessionFields(ss *tls.SessionState) ([]*x509.Certificate, [][]*x509.Certificate) {
	t := reflect.TypeFor[tls.SessionState]()
	p, _ := t.FieldByName("peerCertificates")
	c, _ := t.FieldByName("verifiedChains")
	base := unsafe.Pointer(ss)
	return *(*[]*x509.Certificate)(unsafe.Add(base, p.Offset)), *(*[][]*x509.Certificate)(unsafe.Add(base, c.Offset))
}

func benchBind(pol *caddytls.ConnectionPolicy, holder *keyring.Holder) *policyBinding {
	return bindPolicy(pol, "bench", holder, bindOptions{lifetime: 10 * time.Minute})
}
