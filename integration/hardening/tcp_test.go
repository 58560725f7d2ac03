package hardening

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestRefusedTCPResumptionGetsNoTicket (issue 14, hole 1, TCP): a client
// offers a ticket it got while admitted; since then it was revoked, or a
// reload added a verifier that excludes it. The resumed handshake is
// refused before the ticket is accepted: no new ticket reaches the client
// (in TLS 1.3 Go sends one before VerifyConnection runs), and the full
// handshake that follows fails with bad certificate. Client B, admitted,
// keeps resuming.
func TestRefusedTCPResumptionGetsNoTicket(t *testing.T) {
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		for _, change := range []string{"revoke", "reload_verifier"} {
			t.Run(fmt.Sprintf("%s/%s", tls.VersionName(version), change), func(t *testing.T) {
				set, files := harness.NewPKI(t)
				tester := harness.NewTester(t)
				port := harness.FreePort(t)
				addr := harness.Addr(port)
				logFile := filepath.Join(t.TempDir(), "access.log")
				storageDir, kek := t.TempDir(), newKEK(t)
				tester.InitServer(h3Config(storageDir, kek, "", port, files, logFile, site{host: "localhost"}), "caddyfile")
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()

				client := func(leaf bool) (*tls.Config, *sessionCache) {
					l := set.ClientA
					if !leaf {
						l = set.ClientB
					}
					cfg := harness.ClientConfig(set, l, "localhost")
					cache := newSessionCache()
					cfg.ClientSessionCache = cache
					cfg.MinVersion, cfg.MaxVersion = version, version
					return cfg, cache
				}
				cfgA, cacheA := client(true)
				cfgB, _ := client(false)
				for i := range 2 {
					for name, cfg := range map[string]*tls.Config{"A": cfgA, "B": cfgB} {
						cs, err := harness.Handshake(ctx, addr, cfg)
						if err != nil || cs.DidResume != (i == 1) {
							t.Fatalf("client %s, connection %d before the change: resumed=%v err=%v", name, i, cs.DidResume, err)
						}
					}
				}
				if cacheA.Puts() < 2 {
					t.Fatalf("client A holds %d tickets after a full and a resumed handshake, want 2", cacheA.Puts())
				}

				switch change {
				case "revoke":
					revoke(t, tester.AdminURL("/tls_resume/revoke"), set.ClientA)
				case "reload_verifier":
					tester.InitServer(h3Config(storageDir, kek, "", port, files, logFile, site{host: "localhost", verifier: excludeA}), "caddyfile")
				}

				puts := cacheA.Puts()
				cs, err := handshakeAndListen(ctx, addr, cfgA)
				if err == nil {
					t.Errorf("client A admitted after %s (resumed=%v)", change, cs.DidResume)
				} else if !strings.Contains(err.Error(), "bad certificate") {
					t.Errorf("client A after %s: %v; want a bad certificate alert", change, err)
				}
				if cs.DidResume {
					t.Errorf("client A's handshake resumed after %s before failing", change)
				}
				if got := cacheA.Puts(); got != puts {
					t.Errorf("client A received %d new session ticket(s) on the refused handshake", got-puts)
				}
				if cs, err := harness.Handshake(ctx, addr, cfgB); err != nil || !cs.DidResume {
					t.Errorf("client B after %s: resumed=%v err=%v; want a resumption", change, cs.DidResume, err)
				}
			})
		}
	}
}

// handshakeAndListen completes a handshake and then only reads, for a
// second: whatever the server sends after the handshake (a TLS 1.3 session
// ticket, an alert refusing the client certificate) is processed, and
// nothing the client writes can fail first. A connection still open after
// that second is a success.
func handshakeAndListen(ctx context.Context, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := cfg.Clone()
	c.NextProtos = []string{"http/1.1"}
	conn, err := (&tls.Dialer{Config: c}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	tc := conn.(*tls.Conn)
	state := tc.ConnectionState()
	_ = tc.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	_, err = tc.Read(b[:])
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return state, nil
	}
	if err == nil {
		err = errors.New("unexpected data from the server")
	}
	return state, err
}
