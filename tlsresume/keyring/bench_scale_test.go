package keyring

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"
	"time"
)

// BenchmarkDenyListScale measures what a deny list of n entries costs the
// ring's synchroniser (the handshake's share is tlsresume's benchmark of
// the same name):
//
//   - open: what every poll does with an unchanged ring: open the sealed
//     document (AES-GCM and JSON), then check that it holds every
//     revocation this node holds (holdsRevocationsOf); reports the sealed
//     document's size;
//
//   - decode: the open alone (AES-GCM and JSON), without the check;
//
//   - install: indexing a changed document for handshakes (NewSnapshot).
//
//     go test ./tlsresume/keyring -run '^$' -bench DenyListScale -benchtime 20x
//
// The entries name random leaf digests with an expiry, as POST
// /tls_resume/revoke with cert_pem records them.
func BenchmarkDenyListScale(b *testing.B) {
	kek, err := newKEK(bytes.Repeat([]byte{3}, KEKSize))
	if err != nil {
		b.Fatal(err)
	}
	sched := testSchedule()
	for _, n := range []int{0, 1000, 10000, 100000} {
		doc, err := sched.Maintain(nil, t0, NewRandomKey)
		if err != nil {
			b.Fatal(err)
		}
		doc.Denied = scaleDenied(n)
		sealed, err := Seal(doc, kek, "default")
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("entries=%d/open", n), func(b *testing.B) {
			held := doc.Clone()
			b.ResetTimer()
			for range b.N {
				got, _, err := Open(sealed, []*KEK{kek}, "default")
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
				if _, _, err := Open(sealed, []*KEK{kek}, "default"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("entries=%d/install", n), func(b *testing.B) {
			for range b.N {
				if _, err := NewSnapshot(doc, sched); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// scaleDenied makes n deny-list entries for random leaves that expire in
// a year.
func scaleDenied(n int) []DeniedCert {
	out := make([]DeniedCert, n)
	sum := make([]byte, 32)
	for i := range out {
		_, _ = rand.Read(sum)
		out[i] = DeniedCert{SHA256: hex.EncodeToString(sum), Added: t0, NotAfter: t0.Add(365 * 24 * time.Hour), Reason: "scale"}
	}
	return out
}
