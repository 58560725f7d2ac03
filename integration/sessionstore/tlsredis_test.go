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
	a := c.Node(0).Addr()
	ctx := context.Background()

	rec := &recorder{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	cfg := harness.ClientConfig(set, set.ClientA, "localhost")
	cfg.ClientSessionCache = rec
	awaitCrossResume(t, c, cfg, rec, 20*time.Second, "at start", srv.LogTail)
	if cs, err := harness.Handshake(ctx, a, cfg); err != nil || !cs.DidResume || len(rec.last) != 33 {
		t.Fatalf("node A did not resume node B's session through TLS Redis: %v", err)
	}
}
