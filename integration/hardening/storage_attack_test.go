package hardening

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// TestRevocationSurvivesStorageAttacks (issue 14, hole 2): client A is
// revoked; then someone who can write the shared storage, without the KEK,
// (a) overwrites the ring file with garbage, (b) deletes the storage
// directory, or (c) puts back the authentic ring document copied before
// the revocation. In every case, on the running node and after a restart
// with the storage attacked again while it was down, A stays refused (full
// handshake, and its pre-revocation ticket), client B keeps resuming (after
// at most one full handshake), the node keeps the ring version it held, and
// it says what is wrong (status store.last_error, one ERROR log line, the
// ring_load counters).
func TestRevocationSurvivesStorageAttacks(t *testing.T) {
	for _, attack := range []string{"garbage", "deleted", "rollback"} {
		t.Run(attack, func(t *testing.T) {
			testStorageAttack(t, attack)
		})
	}
}

func testStorageAttack(t *testing.T, attack string) {
	set, files := harness.NewPKI(t)
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	c := harness.StartCluster(t, 1, func(n harness.NodeInfo) string {
		return fmt.Sprintf(`{
	tls_resume {
		kek {env.TLS_RESUME_KEK}
		poll_interval 1s
		max_clock_skew 1s
	}
}

https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	respond "{http.request.tls.client.subject} resumed={http.request.tls.resumed}"
}
`, n.Port(), files.ServerCert, files.ServerKey, files.CA)
	}, harness.WithEnv("TLS_RESUME_KEK="+base64.StdEncoding.EncodeToString(kek)))
	node := c.Node(0)
	addr := node.Addr()
	ringFile := filepath.Join(c.StorageDir, "tls_resume", "default", "ring.json")
	statusURL := node.AdminURL("/tls_resume/status")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Both clients resume; A's ticket from before the revocation is kept.
	cacheA := newSessionCache()
	cfgA := harness.ClientConfig(set, set.ClientA, "localhost")
	cfgA.ClientSessionCache = cacheA
	cfgB := harness.ClientConfig(set, set.ClientB, "localhost")
	for name, cfg := range map[string]*tls.Config{"A": cfgA, "B": cfgB} {
		awaitResumption(t, ctx, addr, cfg, "client "+name+" before the revocation", 20*time.Second)
	}
	ticketA := cacheA.last(t)
	old, err := os.ReadFile(ringFile)
	if err != nil {
		t.Fatalf("the ring document: %v", err)
	}
	before := getStatus(t, statusURL)

	revoke(t, node.AdminURL("/tls_resume/revoke"), set.ClientA)
	held := getStatus(t, statusURL)
	if held.DeniedCertificates != 1 || held.Version <= before.Version {
		t.Fatalf("status after the revocation: %v; want 1 denied certificate and a version above %d", held, before.Version)
	}
	check := clientChecks{set: set, addr: addr, ticketA: ticketA, cfgB: cfgB}
	check.run(t, ctx, "after the revocation")

	// The attack on the running node.
	logOffset := len(node.Log())
	apply := func() {
		t.Helper()
		switch attack {
		case "garbage":
			junk := make([]byte, len(old))
			_, _ = rand.Read(junk)
			if err := os.WriteFile(ringFile, junk, 0o600); err != nil {
				t.Fatal(err)
			}
		case "deleted":
			if err := os.RemoveAll(c.StorageDir); err != nil {
				t.Fatal(err)
			}
		case "rollback":
			if err := os.WriteFile(ringFile, old, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply()
	metrics := node.AdminURL("/metrics")
	loadResult := map[string]string{"garbage": "unauthentic", "deleted": "deleted", "rollback": "rollback"}[attack]
	series := fmt.Sprintf(`caddy_tls_resume_store_operations_total{op="ring_load",result="%s"}`, loadResult)
	detected := func() bool {
		if harness.Metric(t, metrics, series) < 1 {
			return false
		}
		switch attack {
		case "garbage":
			return getStatus(t, statusURL).Store.LastError != ""
		default:
			// written back: storage holds a document again, and not
			// the old one
			b, err := os.ReadFile(ringFile)
			return err == nil && !bytes.Equal(b, old)
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for !detected() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: the node did not notice within 15s (%s = %v); status %v", attack, series, harness.Metric(t, metrics, series), getStatus(t, statusURL))
		}
		time.Sleep(200 * time.Millisecond)
	}
	check.run(t, ctx, "running, storage "+attack)
	// Several polls later, still the same.
	time.Sleep(3500 * time.Millisecond)
	check.run(t, ctx, "running, storage "+attack+", 3 polls later")
	st := getStatus(t, statusURL)
	t.Logf("status, running, storage %s: %v", attack, st)
	if st.Version < held.Version || st.DeniedCertificates != 1 || st.SealingKeyID == "" {
		t.Errorf("status, running, storage %s: %v; want version >= %d, 1 denied certificate, a sealing key", attack, st, held.Version)
	}
	if attack == "garbage" && !strings.Contains(st.Store.LastError, "ring") {
		t.Errorf("status, running, storage garbage: store.last_error = %q; want the storage error", st.Store.LastError)
	}
	if attack != "garbage" {
		if b, err := os.ReadFile(ringFile); err != nil || bytes.Equal(b, old) {
			t.Errorf("storage %s: the node did not write its ring back (%v)", attack, err)
		}
	}
	errs := errorLines(node.Log()[logOffset:])
	if len(errs) != 1 {
		t.Errorf("storage %s: %d ERROR lines from tls_resume over several polls, want exactly 1:\n%s", attack, len(errs), strings.Join(errs, "\n"))
	}

	// Across a restart, with the storage attacked again while the node
	// is down.
	if err := node.Stop(); err != nil {
		t.Fatal(err)
	}
	apply()
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	if matches, _ := filepath.Glob(filepath.Join(node.Dir, "xdg-data", "caddy", "tls_resume", "last-known", "*")); len(matches) == 0 {
		t.Errorf("no last-known ring copy under the node's data directory")
	}
	check.run(t, ctx, "after a restart, storage "+attack)
	time.Sleep(3500 * time.Millisecond)
	check.run(t, ctx, "after a restart, storage "+attack+", 3 polls later")
	st = getStatus(t, statusURL)
	t.Logf("status after a restart, storage %s: %v", attack, st)
	if st.Version < held.Version || st.DeniedCertificates != 1 || st.SealingKeyID == "" {
		t.Errorf("status after a restart, storage %s: %v; want version >= %d, 1 denied certificate, a sealing key", attack, st, held.Version)
	}
	if attack == "garbage" && st.Store.LastError == "" {
		t.Errorf("status after a restart over a garbage ring: no store.last_error")
	}
}

// clientChecks are what must hold whatever storage holds: client A (its
// pre-revocation ticket, and a full handshake) refused, client B resuming
// after at most one full handshake.
type clientChecks struct {
	set     *pki.Set
	addr    string
	ticketA *tls.ClientSessionState
	cfgB    *tls.Config
}

func (c clientChecks) run(t *testing.T, ctx context.Context, when string) {
	t.Helper()
	fresh := harness.ClientConfig(c.set, c.set.ClientA, "localhost")
	if resp, err := harness.Get(ctx, c.addr, fresh, "/"); err == nil {
		t.Errorf("%s: revoked client A admitted on a full handshake: %d %q", when, resp.StatusCode, resp.Body)
	}
	old := harness.ClientConfig(c.set, c.set.ClientA, "localhost")
	old.ClientSessionCache = offering(c.ticketA)
	if resp, err := harness.Get(ctx, c.addr, old, "/"); err == nil {
		t.Errorf("%s: revoked client A admitted with its old ticket (resumed=%v): %q", when, resp.State.DidResume, resp.Body)
	}
	for i := range 2 {
		resp, err := harness.Get(ctx, c.addr, c.cfgB, "/")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s: client B refused: %v", when, err)
			return
		}
		if resp.State.DidResume {
			return
		}
		if i == 1 {
			t.Errorf("%s: client B did not resume after a full handshake", when)
		}
	}
}

// awaitResumption connects with cfg until a connection resumes.
func awaitResumption(t *testing.T, ctx context.Context, addr string, cfg *tls.Config, who string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := harness.Get(ctx, addr, cfg, "/")
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if resp.State.DidResume {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no resumption within %v", who, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// errorLines returns the ERROR-level lines the tls_resume app logged.
func errorLines(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		var e struct {
			Level  string `json:"level"`
			Logger string `json:"logger"`
		}
		if json.Unmarshal([]byte(l), &e) == nil && e.Level == "error" && strings.HasPrefix(e.Logger, "tls_resume") {
			out = append(out, l)
		}
	}
	return out
}
