package tlsresume

import (
	"crypto/tls"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
	"github.com/tlsresume/caddy-tlsresume/storage"
)

// BenchmarkStoreHooks is the per-resumption work of the ticket hooks
// (WrapSession then UnwrapSession on a real mTLS session state) with
// stateless tickets, the memory store and Redis on loopback (with and
// without the in-process cache).
func BenchmarkStoreHooks(b *testing.B) {
	ss := realSessionState(b)
	r, _ := testRing(b)
	holder := new(ringHolder)
	holder.store(r)
	cs := tls.ConnectionState{ServerName: "api.example.com"}
	srv := testredis.Must(b)
	opts, _ := storage.StoreOptions{Budget: 1e9}.WithDefaults()
	for _, tc := range []struct {
		name  string
		store storage.SessionStore
	}{
		{"stateless", nil},
		{"memory", storage.NewMemoryStore(1 << 16)},
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
	s, err := storage.NewRedisStore(&storage.RedisStore{Addresses: []string{srv.Addr}, NoLocalCache: true, KeyPrefix: "bench:"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}
