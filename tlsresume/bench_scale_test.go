package tlsresume

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/storage"
)

// BenchmarkDenyListScale measures what a deny list of n entries costs:
//
//   - resumed: one resumed mTLS handshake (TLS 1.3, loopback, client and
//     server in this process) against a ring with n entries;
//
//   - open: what every poll does with an unchanged ring: open the sealed
//     document (AES-GCM and JSON), then check that it holds every
//     revocation this node holds (holdsRevocationsOf); reports the sealed
//     document's size;
//
//   - decode: the open alone (AES-GCM and JSON), without the check;
//
//   - install: indexing a changed document for handshakes (newRing).
//
//     go test ./tlsresume -run '^$' -bench DenyListScale -benchtime 20x
//
// (At 100,000 entries "open" takes over a minute per operation; use
// -benchtime 1x there.)
//
// The entries name random leaf digests with an expiry, as POST
// /tls_resume/revoke with cert_pem records them.
func BenchmarkDenyListScale(b *testing.B) {
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	kek, err := storage.NewKEK(bytes.Repeat([]byte{3}, storage.KEKSize))
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{0, 1000, 10000, 100000} {
		_, base := testRing(b)
		doc := base.Clone()
		doc.Denied = scaleDenied(n)
		sealed, err := storage.SealRing(doc, kek, "default")
		if err != nil {
			b.Fatal(err)
		}
		r, err := newRing(doc, testSchedule())
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
		b.Run(fmt.Sprintf("entries=%d/open", n), func(b *testing.B) {
			held := doc.Clone()
			b.ResetTimer()
			for range b.N {
				got, _, err := storage.OpenRing(sealed, []*storage.KEK{kek}, "default")
				if err != nil {
					b.Fatal(err)
				}
				if !holdsRevocationsOf(got, held, t0) {
					b.Fatal("the stored ring lacks a revocation it holds")
				}
			}
			b.ReportMetric(float64(len(sealed)), "doc-bytes")
		})
		b.Run(fmt.Sprintf("entries=%d/decode", n), func(b *testing.B) {
			for range b.N {
				if _, _, err := storage.OpenRing(sealed, []*storage.KEK{kek}, "default"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("entries=%d/install", n), func(b *testing.B) {
			for range b.N {
				if _, err := newRing(doc, testSchedule()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// scaleDenied makes n deny-list entries for random leaves that expire in
// a year.
func scaleDenied(n int) []storage.DeniedCert {
	out := make([]storage.DeniedCert, n)
	sum := make([]byte, 32)
	for i := range out {
		_, _ = rand.Read(sum)
		out[i] = storage.DeniedCert{SHA256: hex.EncodeToString(sum), Added: t0, NotAfter: t0.Add(365 * 24 * time.Hour), Reason: "scale"}
	}
	return out
}
