package storage

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// TestRedisStoreTLS runs the Redis store against a real redis-server that
// accepts only TLS and requires a client certificate: sessions, single use
// and the local cache's invalidation over pub/sub all work through it, and
// every way of getting TLS wrong is an error from the call (never a miss
// that could be mistaken for "no such session", never a plain-text
// connection), bounded in time.
func TestRedisStoreTLS(t *testing.T) {
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	files, err := set.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	otherFiles, err := other.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clientCert := set.ClientA.TLSCertificate()
	srv := testredis.MustTLS(t,
		testredis.TLSFiles{Cert: files.ServerCert, Key: files.ServerKey, ClientCA: files.CA},
		&tls.Config{RootCAs: set.Root.Pool(), Certificates: []tls.Certificate{clientCert}, ServerName: "127.0.0.1"})
	mutual := &RedisTLS{CAFile: files.CA, CertFile: files.ClientACert, KeyFile: files.ClientAKey}

	t.Run("mutual TLS", func(t *testing.T) {
		ctx := ctxT(t)
		a := newRedisStore(t, srv, func(s *RedisStore) { s.TLS = mutual })
		b := newRedisStore(t, srv, func(s *RedisStore) { s.TLS = mutual })
		for _, s := range []*RedisStore{a, b} {
			waitSynced(t, s)
		}
		h := newHandle(t)
		if err := a.Put(ctx, h, []byte("sealed"), [32]byte{9}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Get(ctx, h); err != nil || string(got) != "sealed" {
			t.Fatalf("Get through TLS = %q, %v", got, err)
		}
		// b now holds h in its cache; a's take reaches it over pub/sub.
		if _, err := a.Take(ctx, h); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() error {
			if _, err := b.Get(ctx, h); !errors.Is(err, ErrMiss) {
				return fmt.Errorf("b.Get after a.Take = %v, want ErrMiss", err)
			}
			return nil
		})
		once := newHandle(t)
		if err := a.Put(ctx, once, []byte("once"), [32]byte{}, time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Take(ctx, once); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Take(ctx, once); !errors.Is(err, ErrMiss) {
			t.Fatalf("second Take: %v, want ErrMiss", err)
		}
	})

	for _, tc := range []struct {
		name string
		tls  *RedisTLS
		want string // in the error
	}{
		{"plain TCP to a TLS port", nil, ""},
		{"server certificate from another CA", &RedisTLS{CAFile: otherFiles.CA, CertFile: files.ClientACert, KeyFile: files.ClientAKey}, "certificate"},
		{"no client certificate", &RedisTLS{CAFile: files.CA}, ""},
		{"client certificate from another CA", &RedisTLS{CAFile: files.CA, CertFile: otherFiles.ClientACert, KeyFile: otherFiles.ClientAKey}, ""},
		{"wrong server name", &RedisTLS{CAFile: files.CA, CertFile: files.ClientACert, KeyFile: files.ClientAKey, ServerName: "redis.example"}, "redis.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			s := newRedisStore(t, srv, func(s *RedisStore) {
				s.TLS = tc.tls
				s.NoLocalCache = true
			})
			start := time.Now()
			_, err := s.Get(ctx, newHandle(t))
			if err == nil || errors.Is(err, ErrMiss) {
				t.Fatalf("Get = %v, want a connection error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Get error %q does not mention %q", err, tc.want)
			}
			if err := s.Put(ctx, newHandle(t), []byte("x"), [32]byte{}, time.Minute); err == nil {
				t.Fatal("Put succeeded over a connection that should have failed")
			}
			// Two calls, each bounded by the store's budget; a generous
			// bound only catches a call that hangs.
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("failing calls took %s", d)
			}
		})
	}
}
