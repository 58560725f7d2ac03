package tlsresume

import (
	"crypto/tls"
	"slices"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
	"github.com/tlsresume/caddy-tlsresume/storage"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// BenchmarkStoreHooks is the per-resumption work of the ticket hooks
// (WrapSession then UnwrapSession on a real mTLS session state) with
// stateless tickets, the memory store and Redis on loopback (with and
// without the in-process cache).
func BenchmarkStoreHooks(b *testing.B) {
	ss := realSessionState(b)
	r, _ := testRing(b)
	holder := new(keyring.Holder)
	holder.Store(r)
	cs := tls.ConnectionState{ServerName: "api.example.com"}
	srv := testredis.Must(b)
	opts, _ := SessionStorePolicy{Budget: 1e9}.withDefaults()
	for _, tc := range []struct {
		name  string
		store storage.SessionStore
	}{
		{"stateless", nil},
		{"memory", memoryStore(b, 1<<16)},
		{"redis", redisStore(b, srv)}, // with the in-process cache
		{"redis_nocache", redisNoCache(b, srv)},
	} {
		pb := &policyBinding{ticketBinding: *testBinding(1, false), rings: holder, now: func() time.Time { return t0 }}
		if tc.store != nil {
			pb.sessions = newSessions(tc.store, opts, 10*time.Minute, zap.NewNop())
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				t, _ := pb.wrapSession(cs, ss)
				if got, _ := pb.unwrapSession(t, cs); got == nil {
					b.Fatal("did not open")
				}
			}
		})
	}
}

func redisNoCache(b *testing.B, srv *testredis.Server) storage.SessionStore {
	return provisionStore(b, &storage.RedisStore{Addresses: []string{srv.Addr}, NoLocalCache: true, KeyPrefix: "bench:"})
}

// BenchmarkResumedHandshakeLatency measures whole resumed mTLS handshakes
// (TLS 1.3, ECDSA, client and server over loopback TCP) with stateless
// tickets, the memory store, and Redis on loopback with and without the
// in-process cache, in one run, and reports the median and 99th percentile
// handshake latency besides the mean.
//
//	go test ./tlsresume -run '^$' -bench ResumedHandshakeLatency -benchtime 2000x
func BenchmarkResumedHandshakeLatency(b *testing.B) {
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	srv := testredis.Must(b)
	opts, _ := SessionStorePolicy{}.withDefaults()
	for _, tc := range []struct {
		name  string
		store storage.SessionStore
	}{
		{"stateless", nil},
		{"memory", memoryStore(b, 1<<16)},
		{"redis", redisStore(b, srv)},
		{"redis_nocache", redisNoCache(b, srv)},
	} {
		cfg := benchServerConfig(b, set, tls.VersionTLS13, false)
		r, _ := testRing(b)
		holder := new(keyring.Holder)
		holder.Store(r)
		pol := &caddytls.ConnectionPolicy{
			TLSConfig:            cfg,
			ClientAuthentication: &caddytls.ClientAuthentication{Mode: "require_and_verify"},
		}
		pb := bindPolicy(pol, "bench", holder, bindOptions{lifetime: 10 * time.Minute})
		start := time.Now()
		pb.now = func() time.Time { return t0.Add(time.Minute + time.Since(start)) }
		if tc.store != nil {
			pb.sessions = newSessions(tc.store, opts, 10*time.Minute, zap.NewNop())
		}
		b.Run(tc.name, func(b *testing.B) {
			client := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(4))
			if handshakeOnce(b, cfg, client) {
				b.Fatal("priming handshake resumed")
			}
			lat := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				t := time.Now()
				if !handshakeOnce(b, cfg, client) {
					b.Fatal("did not resume")
				}
				lat = append(lat, time.Since(t))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
