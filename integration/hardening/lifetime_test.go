package hardening

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// TestTicketLifetimeBoundsAuthenticationAge (issue 14, hole 3): with
// ticket_lifetime 4s, a client that resumes every 1.3s, each time offering
// the newest ticket it was given, must make a full handshake (prove its
// key again) within lifetime + 2s of its last one, over TLS 1.2 and 1.3,
// with stateless tickets and with the Redis session store. Before the fix
// every new ticket was stamped "now" and the client resumed forever.
func TestTicketLifetimeBoundsAuthenticationAge(t *testing.T) {
	const (
		lifetime = 4 * time.Second
		every    = 1300 * time.Millisecond
		slack    = 2 * time.Second
		run      = 2*lifetime + 3*time.Second
	)
	srv := testredis.Must(t)
	for _, store := range []string{"stateless", "redis"} {
		for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(fmt.Sprintf("%s/%s", store, tls.VersionName(version)), func(t *testing.T) {
				set, files := harness.NewPKI(t)
				tester := harness.NewTester(t)
				port := harness.FreePort(t)
				addr := harness.Addr(port)
				extra := fmt.Sprintf("\t\tticket_lifetime %s\n", lifetime)
				if store == "redis" {
					// A budget far above Redis's loopback latency: this test is
					// about the lifetime, not a loaded machine's store latency.
					extra += fmt.Sprintf("\t\tsession_store redis {\n\t\t\taddress %s\n\t\t\tkey_prefix %s:\n\t\t\tbudget 2s\n\t\t}\n", srv.Addr, t.Name())
				}
				logFile := filepath.Join(t.TempDir(), "access.log")
				tester.InitServer(h3Config(t.TempDir(), newKEK(t), extra, port, files, logFile, site{host: "localhost"}), "caddyfile")
				ctx, cancel := context.WithTimeout(context.Background(), run+30*time.Second)
				defer cancel()

				cfg := harness.ClientConfig(set, set.ClientA, "localhost")
				cfg.ClientSessionCache = newSessionCache()
				cfg.MinVersion, cfg.MaxVersion = version, version
				var (
					lastFull        time.Time
					fulls, resumed  int
					resumedThisAuth int
					trace           []string
				)
				start := time.Now()
				for time.Since(start) < run {
					at := time.Now()
					cs, err := harness.Handshake(ctx, addr, cfg)
					if err != nil {
						t.Fatalf("handshake at +%v: %v", at.Sub(start).Round(time.Millisecond), err)
					}
					kind := "full"
					if cs.DidResume {
						kind = "resumed"
					}
					trace = append(trace, fmt.Sprintf("+%v %s", at.Sub(start).Round(10*time.Millisecond), kind))
					switch {
					case !cs.DidResume:
						if fulls > 0 && resumedThisAuth == 0 {
							t.Errorf("full handshake at +%v without a resumption since the previous one", at.Sub(start).Round(time.Millisecond))
						}
						fulls++
						lastFull, resumedThisAuth = at, 0
					case fulls == 0:
						t.Fatal("the first handshake resumed")
					default:
						resumed++
						resumedThisAuth++
						if age := at.Sub(lastFull); age > lifetime+slack {
							t.Errorf("resumed %v after the last full handshake; ticket_lifetime is %v (+%v allowed)", age.Round(time.Millisecond), lifetime, slack)
						}
					}
					time.Sleep(time.Until(at.Add(every)))
				}
				t.Logf("handshakes: %v", trace)
				if ticket, _, err := cfg.ClientSessionCache.(*sessionCache).last(t).ResumptionState(); err != nil {
					t.Fatal(err)
				} else if isHandle := len(ticket) == 33; isHandle != (store == "redis") {
					t.Fatalf("the client's ticket is %d bytes; with %s it should be a store handle: %v", len(ticket), store, isHandle)
				}
				if resumed == 0 {
					t.Fatal("no handshake resumed: this test proves nothing")
				}
				if fulls < 2 {
					t.Errorf("%d full handshake(s) in %v with ticket_lifetime %v; want a new one at least every %v", fulls, run, lifetime, lifetime+slack)
				}
			})
		}
	}
}
