package hardening

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestSitePolicies (issue 17): per-site resumption policy on one Caddy. Four
// mTLS sites share one client-auth realm and resume_across_hosts: www and
// www2 keep the app's 30m lifetime, pay has a site ticket_lifetime of 3s,
// off has resumption off. A pay session needs a full handshake again once its 3s
// have passed; off never resumes; a www ticket never opens on pay (nor a pay
// ticket on www), although realm and hosts would let it.
func TestSitePolicies(t *testing.T) {
	hosts := []string{"www.localhost", "pay.localhost", "off.localhost", "www2.localhost"}
	set, files := harness.NewPKI(t, hosts...)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	addr := harness.Addr(port)
	extra := "\t\tresume_across_hosts\n" +
		"\t\tsite pay.localhost {\n\t\t\tticket_lifetime 3s\n\t\t}\n" +
		"\t\tsite off.localhost {\n\t\t\tresumption off\n\t\t}\n"
	logFile := filepath.Join(t.TempDir(), "access.log")
	var sites []site
	for _, h := range hosts {
		sites = append(sites, site{host: h})
	}
	config := h3Config(t.TempDir(), newKEK(t), extra, port, files, logFile, sites...)
	tester.InitServer(config, "caddyfile")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	handshake := func(cfg *tls.Config) bool {
		t.Helper()
		cs, err := harness.Handshake(ctx, addr, cfg)
		if err != nil {
			t.Fatalf("handshake to %s: %v", cfg.ServerName, err)
		}
		return cs.DidResume
	}
	client := func(host string) *tls.Config {
		cfg := harness.ClientConfig(set, set.ClientA, host)
		cfg.ClientSessionCache = newSessionCache()
		return cfg
	}

	www, pay, off := client("www.localhost"), client("pay.localhost"), client("off.localhost")
	for _, cfg := range []*tls.Config{www, pay, off} {
		if handshake(cfg) {
			t.Fatalf("%s: first handshake resumed", cfg.ServerName)
		}
	}
	if !handshake(www) || !handshake(pay) {
		t.Fatal("www or pay did not resume")
	}
	for i := range 3 {
		if handshake(off) {
			t.Fatalf("off.localhost resumed (connection %d) with resumption off", i+2)
		}
	}

	// Tickets are bound to their site policy.
	cross := func(ticketOf *tls.Config, host string) bool {
		c := harness.ClientConfig(set, set.ClientA, host)
		c.ClientSessionCache = offering(ticketOf.ClientSessionCache.(*sessionCache).last(t))
		return handshake(c)
	}
	if cross(www, "pay.localhost") {
		t.Error("a www ticket resumed on pay, which has its own policy")
	}
	if cross(pay, "www.localhost") {
		t.Error("a pay ticket resumed on www")
	}
	// Control: with resume_across_hosts, a www ticket opens on another host
	// of the app's default policy.
	if !cross(www, "www2.localhost") {
		t.Error("control: a www ticket did not resume on www2 (same policy, resume_across_hosts)")
	}

	// pay's 3s: resuming every second, a full handshake comes by 3s + 1s
	// after the last one.
	lastFull := time.Now()
	sawFull := false
	for time.Since(lastFull) < 6*time.Second && !sawFull {
		time.Sleep(time.Second)
		if !handshake(pay) {
			sawFull = true
			if age := time.Since(lastFull); age > 5*time.Second {
				t.Errorf("pay's full handshake came %v after the last one", age)
			}
		}
	}
	if !sawFull {
		t.Fatal("pay resumed for 6s with a 3s site ticket_lifetime")
	}
	// www keeps resuming all along (30m).
	if !handshake(www) {
		t.Error("www stopped resuming")
	}

	// caddy adapt round-trips the sites.
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(config), nil)
	if err != nil {
		t.Fatal(err)
	}
	var adapted struct {
		Apps struct {
			TLSResume struct {
				Sites []struct {
					Hosts          []string `json:"hosts"`
					TicketLifetime int64    `json:"ticket_lifetime"`
					Resumption     string   `json:"resumption"`
				} `json:"sites"`
			} `json:"tls_resume"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &adapted); err != nil {
		t.Fatal(err)
	}
	s := adapted.Apps.TLSResume.Sites
	if len(s) != 2 || s[0].Hosts[0] != "pay.localhost" || s[0].TicketLifetime != int64(3*time.Second) || s[1].Resumption != "off" {
		t.Fatalf("adapted sites %+v", s)
	}
}
