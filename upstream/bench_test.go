package upstream

import (
	"crypto/tls"
	"testing"
)

// BenchmarkUpstreamNewConn measures what one new upstream connection costs
// through the http_resume transport — TCP connect, mTLS handshake (ECDSA
// P-256 certificates, client chain verified by the server), one GET — with
// session reuse on and off, against a local crypto/tls server. Keep-alive is
// off, so every operation is a new connection. Both sides run in this
// process, so ns/op is the CPU and latency of both ends. The ratio of the
// two (of the last reported runs) is logged with -v; resumed/op shows the share of resumed
// handshakes. TLS 1.3 (the default) still runs an (EC)DHE key exchange on
// resumption; what it saves is the certificate exchange, signatures and
// chain verification on both sides.
func BenchmarkUpstreamNewConn(b *testing.B) {
	benchmarkNewConn(b, tls.VersionTLS13)
}

// BenchmarkUpstreamNewConnTLS12 is BenchmarkUpstreamNewConn against an
// upstream limited to TLS 1.2, where a resumed handshake also skips the key
// exchange.
func BenchmarkUpstreamNewConnTLS12(b *testing.B) {
	benchmarkNewConn(b, tls.VersionTLS12)
}

func benchmarkNewConn(b *testing.B, maxVersion uint16) {
	p := getPKI(b)
	be := startBackend(b, p.set.Server.TLSCertificate(), func(c *tls.Config) { c.MaxVersion = maxVersion })
	nsPerOp := map[string]float64{}
	for _, mode := range []struct {
		name  string
		reuse bool
	}{{"reuse=on", true}, {"reuse=off", false}} {
		tr := provisionTransport(b, mtlsConfig(b, map[string]any{"session_reuse": mode.reuse}))
		get(b, tr, be.Addr) // the first connection is always a full handshake
		b.Run(mode.name, func(b *testing.B) {
			before, resumedBefore := be.handshakes.Load(), be.resumed.Load()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				get(b, tr, be.Addr)
			}
			b.StopTimer()
			hs, res := be.handshakes.Load()-before, be.resumed.Load()-resumedBefore
			if hs != int64(b.N) {
				b.Fatalf("%d handshakes for %d requests: connections were reused", hs, b.N)
			}
			b.ReportMetric(float64(res)/float64(b.N), "resumed/op")
			// The last call is the one whose result is printed.
			nsPerOp[mode.name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		})
	}
	if on, off := nsPerOp["reuse=on"], nsPerOp["reuse=off"]; on > 0 && off > 0 {
		b.Logf("new upstream connection (%s): reuse=on %.0f ns/op, reuse=off %.0f ns/op, off/on = %.2fx", tls.VersionName(maxVersion), on, off, off/on)
	}
}
