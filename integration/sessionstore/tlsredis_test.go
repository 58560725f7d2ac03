package sessionstore

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// TestTwoNodesShareSessionsOverTLSRedis: the Caddyfile's `tls` block of
// `session_store redis` reaches a redis-server that accepts only TLS and
// requires a client certificate. Two Caddy processes resume each other's
// sessions through it, with store handles as tickets.
func TestTwoNodesShareSessionsOverTLSRedis(t *testing.T) {
	set, files := harness.NewPKI(t)
	srv := testredis.MustTLS(t,
		testredis.TLSFiles{Cert: files.ServerCert, Key: files.ServerKey, ClientCA: files.CA},
		&tls.Config{RootCAs: set.Root.Pool(), Certificates: []tls.Certificate{set.ClientB.TLSCertificate()}, ServerName: "127.0.0.1"})
	c := fleet{
		poll: "1s",
		store: []string{
			"key_prefix tls:",
			"tls {",
			"\tca " + files.CA,
			"\tcert " + files.ClientBCert + " " + files.ClientBKey,
			"}",
		},
		site: mtlsNameSite(files),
	}.start(t, srv)
	a, b := c.Node(0).Addr(), c.Node(1).Addr()
	ctx := context.Background()

	rec := &recorder{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	cfg := harness.ClientConfig(set, set.ClientA, "localhost")
	cfg.ClientSessionCache = rec
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := harness.Handshake(ctx, a, cfg); err != nil {
			t.Fatal(err)
		}
		cs, err := harness.Handshake(ctx, b, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if cs.DidResume && len(rec.last) == 33 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B never resumed node A's session through TLS Redis (last ticket %d bytes)\nA:\n%s\nB:\n%s\nredis:\n%s",
				len(rec.last), c.Node(0).LogTail(20), c.Node(1).LogTail(20), srv.LogTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if cs, err := harness.Handshake(ctx, a, cfg); err != nil || !cs.DidResume || len(rec.last) != 33 {
		t.Fatalf("node A did not resume node B's session through TLS Redis: %v", err)
	}
}
