package resume

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// stickyCache offers one fixed session for every server name: a client
// that carries a ticket from one host to another.
type stickyCache struct{ state *tls.ClientSessionState }

func (c *stickyCache) Get(string) (*tls.ClientSessionState, bool) { return c.state, c.state != nil }
func (c *stickyCache) Put(string, *tls.ClientSessionState)        {}

// rejections reads ticket_rejections_total{reason} from the admin metrics.
func rejections(t *testing.T, tester *harness.Tester, reason string) float64 {
	t.Helper()
	resp, err := http.Get(tester.AdminURL("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	prefix := fmt.Sprintf(`caddy_tls_resume_ticket_rejections_total{reason="%s"} `, reason)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

// TestTicketFromHostANotAcceptedOnHostB: hosts A and B trust the same CA,
// but B admits only client B (a leaf verifier). Client A's ticket from host
// A, carried to host B, must never let client A in: with tickets bound to
// the SNI it does not open (full handshake, refused by the verifier); with
// resume_across_hosts it opens, and the verifier, which runs again on the
// resumed handshake, refuses it.
func TestTicketFromHostANotAcceptedOnHostB(t *testing.T) {
	for _, across := range []bool{false, true} {
		t.Run(fmt.Sprintf("resume_across_hosts=%v", across), func(t *testing.T) {
			set, files := harness.NewPKI(t, "a.example.com", "b.example.com")
			tester := harness.NewTester(t)
			port := harness.FreePort(t)
			extra := ""
			if across {
				extra = "\t\tresume_across_hosts\n"
			}
			site := func(host, verifier string) string {
				return fmt.Sprintf(`https://%s:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
			%s
		}
	}
	respond "%s {http.request.tls.client.subject} resumed={http.request.tls.resumed}"
}
`, host, port, files.ServerCert, files.ServerKey, files.CA, verifier, host)
			}
			tester.InitServer(globals(t, extra)+
				site("a.example.com", "")+
				site("b.example.com", "verifier leaf file "+files.ClientBCert), "caddyfile")
			ctx := context.Background()
			addr := harness.Addr(port)

			// Client A on host A: full, then resumed.
			cfgA := harness.ClientConfig(set, set.ClientA, "a.example.com")
			for i := range 2 {
				resp, err := harness.Get(ctx, addr, cfgA, "/")
				if err != nil || resp.State.DidResume != (i == 1) {
					t.Fatalf("host A connection %d: resumed=%v err=%v", i, resp != nil && resp.State.DidResume, err)
				}
			}
			stolen, ok := cfgA.ClientSessionCache.Get("a.example.com")
			if !ok {
				t.Fatal("no session for host A")
			}

			// Positive control: client B on host B works and resumes.
			cfgB := harness.ClientConfig(set, set.ClientB, "b.example.com")
			for i := range 2 {
				resp, err := harness.Get(ctx, addr, cfgB, "/")
				if err != nil || resp.State.DidResume != (i == 1) || !strings.HasPrefix(resp.Body, "b.example.com CN=web-frontend") {
					t.Fatalf("client B on host B, connection %d: %+v %v", i, resp, err)
				}
			}

			// Client A carries its host-A ticket to host B.
			wrongHost := rejections(t, tester, "wrong_host")
			carry := harness.ClientConfig(set, set.ClientA, "b.example.com")
			carry.ClientSessionCache = &stickyCache{state: stolen}
			resp, err := harness.Get(ctx, addr, carry, "/")
			if err == nil {
				t.Fatalf("client A admitted on host B (resumed=%v): %q", resp.State.DidResume, resp.Body)
			}
			if !across {
				if got := rejections(t, tester, "wrong_host"); got != wrongHost+1 {
					t.Errorf("wrong_host rejections %v → %v, want +1", wrongHost, got)
				}
			}
		})
	}
}

// TestBadTicketsMeanFullHandshakes: a tampered ticket and an expired ticket
// each end in a successful full handshake, counted by reason.
func TestBadTicketsMeanFullHandshakes(t *testing.T) {
	set, files := harness.NewPKI(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	tester.InitServer(globals(t, "\t\tticket_lifetime 1s\n")+mtlsSite(port, files, ""), "caddyfile")
	ctx := context.Background()
	addr := harness.Addr(port)
	cfg := harness.ClientConfig(set, set.ClientA, "localhost")
	if _, err := harness.Get(ctx, addr, cfg, "/"); err != nil {
		t.Fatal(err)
	}
	good, ok := cfg.ClientSessionCache.Get("localhost")
	if !ok {
		t.Fatal("no session")
	}

	// Tampered: one bit of the ticket flipped.
	ticket, state, err := good.ResumptionState()
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(ticket)
	bad[len(bad)/2] ^= 0x01
	// NewResumptionState stores the ticket in the SessionState it is given:
	// forge on a copy so that the genuine session stays intact.
	raw, err := state.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	stateCopy, err := tls.ParseSessionState(raw)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := tls.NewResumptionState(bad, stateCopy)
	if err != nil {
		t.Fatal(err)
	}
	tampered := rejections(t, tester, "tampered")
	c := cfg.Clone()
	c.ClientSessionCache = &stickyCache{state: forged}
	resp, err := harness.Get(ctx, addr, c, "/")
	if err != nil || resp.State.DidResume || resp.StatusCode != 200 {
		t.Fatalf("tampered ticket: resumed=%v err=%v", resp != nil && resp.State.DidResume, err)
	}
	if got := rejections(t, tester, "tampered"); got != tampered+1 {
		t.Errorf("tampered rejections %v → %v", tampered, got)
	}

	// Expired: the lifetime is one second.
	time.Sleep(2100 * time.Millisecond)
	expired := rejections(t, tester, "expired")
	c.ClientSessionCache = &stickyCache{state: good}
	resp, err = harness.Get(ctx, addr, c, "/")
	if err != nil || resp.State.DidResume {
		t.Fatalf("expired ticket: resumed=%v err=%v", resp != nil && resp.State.DidResume, err)
	}
	if got := rejections(t, tester, "expired"); got != expired+1 {
		t.Errorf("expired rejections %v → %v", expired, got)
	}
}

// TestRingUnderOtherKEK: a node whose KEK cannot open the stored ring keeps
// serving with full handshakes and never overwrites the ring; configured
// with the old KEK as kek_previous it opens the ring again and re-seals it
// under the new KEK (the rollover).
func TestRingUnderOtherKEK(t *testing.T) {
	set, files := harness.NewPKI(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	storageDir := t.TempDir()
	ringFile := filepath.Join(storageDir, "tls_resume", "default", "ring.json")
	config := func(kekLines string) string {
		return fmt.Sprintf("{\n\tstorage file_system %s\n\ttls_resume {\n%s\t}\n}\n", storageDir, kekLines) + mtlsSite(port, files, "")
	}
	oldKEK, newKEK := newKEK(t), newKEK(t)
	ctx := context.Background()
	addr := harness.Addr(port)
	connect := func(n int) (resumed int) {
		t.Helper()
		cfg := harness.ClientConfig(set, set.ClientA, "localhost")
		for range n {
			resp, err := harness.Get(ctx, addr, cfg, "/")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("connection failed: %v", err)
			}
			if resp.State.DidResume {
				resumed++
			}
		}
		return resumed
	}

	tester.InitServer(config("\t\tkek "+oldKEK+"\n"), "caddyfile")
	if got := connect(3); got != 2 {
		t.Fatalf("with the ring's KEK: %d of 3 resumed, want 2", got)
	}
	before, err := os.ReadFile(ringFile)
	if err != nil {
		t.Fatal(err)
	}

	tester.InitServer(config("\t\tkek "+newKEK+"\n"), "caddyfile")
	if got := connect(4); got != 0 {
		t.Fatalf("with another KEK: %d connections resumed", got)
	}
	after, _ := os.ReadFile(ringFile)
	if !bytes.Equal(before, after) {
		t.Fatal("a node with another KEK overwrote the ring")
	}

	tester.InitServer(config("\t\tkek "+newKEK+"\n\t\tkek_previous "+oldKEK+"\n"), "caddyfile")
	if got := connect(3); got != 2 {
		t.Fatalf("after rollover: %d of 3 resumed, want 2", got)
	}
	resealed, _ := os.ReadFile(ringFile)
	if bytes.Equal(before, resealed) {
		t.Fatal("ring not re-sealed under the new KEK")
	}
	// The new KEK alone now opens it.
	tester.InitServer(config("\t\tkek "+newKEK+"\n"), "caddyfile")
	if got := connect(3); got != 2 {
		t.Fatalf("new KEK alone after rollover: %d of 3 resumed, want 2", got)
	}
}
