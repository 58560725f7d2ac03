package tlsresume

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// BenchmarkDenyListScale measures what a deny list of n entries costs one
// resumed mTLS handshake (TLS 1.3, loopback, client and server in this
// process). What it costs the ring's polls is keyring's benchmark of the
// same name:
//
//	go test ./tlsresume/... -run '^$' -bench DenyListScale -benchtime 20x
//
// The entries name random leaf digests with an expiry, as POST
// /tls_resume/revoke with cert_pem records them.
func BenchmarkDenyListScale(b *testing.B) {
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{0, 1000, 10000, 100000} {
		_, base := testRing(b)
		doc := base.Clone()
		doc.Denied = scaleDenied(n)
		r, err := keyring.NewSnapshot(doc, testSchedule())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("entries=%d/resumed", n), func(b *testing.B) {
			ts := newTestServer(b, set, tls.VersionTLS13, r)
			cfg := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(4))
			if _, err := dial(b, ts.addr, cfg); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				cs, err := dial(b, ts.addr, cfg)
				if err != nil || !cs.DidResume {
					b.Fatalf("resumed=%v err=%v", cs.DidResume, err)
				}
			}
		})
	}
}

// scaleDenied makes n deny-list entries for random leaves that expire in
// a year.
func scaleDenied(n int) []keyring.DeniedCert {
	out := make([]keyring.DeniedCert, n)
	sum := make([]byte, 32)
	for i := range out {
		_, _ = rand.Read(sum)
		out[i] = keyring.DeniedCert{SHA256: hex.EncodeToString(sum), Added: t0, NotAfter: t0.Add(365 * 24 * time.Hour), Reason: "scale"}
	}
	return out
}
