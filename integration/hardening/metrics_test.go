package hardening

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// scrape returns the in-process Caddy's metrics.
func scrape(t *testing.T, tester *harness.Tester) map[string]float64 {
	t.Helper()
	return harness.Metrics(t, tester.AdminURL("/metrics"))
}

// TestHandshakeMetricsThroughCaddy (issue 15): on a real Caddy with real
// clients, resumed and full mTLS handshakes are timed (handshake and
// verification histograms), a TLS 1.2 client offering no ticket is not a
// ticket rejection, a verifier refusal and a revoked client are each
// counted once per refused handshake, under their server and reason, and
// status reports the resumption ratio and the refusals.
func TestHandshakeMetricsThroughCaddy(t *testing.T) {
	set, files := harness.NewPKI(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	addr := harness.Addr(port)
	logFile := filepath.Join(t.TempDir(), "access.log")
	// Only payments clients pass the verifier: client B (web) is refused.
	cfgText := h3Config(t.TempDir(), newKEK(t), "", port, files, logFile,
		site{host: "localhost", verifier: "verifier client_cert spiffe_id spiffe://demo.example.org/ns/payments/*"})
	tester.InitServer(cfgText, "caddyfile")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := "srv0"
	series := func(name string, labels ...string) string {
		return fmt.Sprintf("caddy_tls_resume_%s{%s}", name, strings.Join(labels, ","))
	}
	before := scrape(t, tester)
	delta := func(after map[string]float64, key string) float64 { return after[key] - before[key] }

	a13 := harness.ClientConfig(set, set.ClientA, "localhost")
	a13.MinVersion = tls.VersionTLS13
	for i := range 3 {
		cs, err := harness.Handshake(ctx, addr, a13)
		if err != nil || cs.DidResume != (i > 0) {
			t.Fatalf("TLS 1.3 handshake %d: resumed=%v err=%v", i, cs.DidResume, err)
		}
	}
	// A TLS 1.2 client without a ticket: a full handshake, no rejection.
	a12 := harness.ClientConfig(set, set.ClientA, "localhost")
	a12.MaxVersion, a12.ClientSessionCache = tls.VersionTLS12, nil
	if _, err := harness.Handshake(ctx, addr, a12); err != nil {
		t.Fatal(err)
	}
	// Client B: refused by the verifier on its full handshake.
	if _, err := harness.Handshake(ctx, addr, harness.ClientConfig(set, set.ClientB, "localhost")); err == nil {
		t.Fatal("client B passed a verifier that excludes it")
	}

	m := scrape(t, tester)
	for key, want := range map[string]float64{
		series("handshake_duration_seconds_count", `mutual="true"`, `resumed="false"`, `server="`+server+`"`): 2,
		series("handshake_duration_seconds_count", `mutual="true"`, `resumed="true"`, `server="`+server+`"`):  2,
		series("verify_duration_seconds_count", `resumed="false"`, `server="`+server+`"`):                     3,
		series("verify_duration_seconds_count", `resumed="true"`, `server="`+server+`"`):                      2,
		series("handshake_refusals_total", `reason="verifier"`, `server="`+server+`"`):                        1,
		series("ticket_rejections_total", `reason="malformed"`):                                               0,
	} {
		if got := delta(m, key); got != want {
			t.Errorf("%s grew by %v, want %v", key, got, want)
		}
	}
	if s := m[series("handshake_duration_seconds_sum", `mutual="true"`, `resumed="true"`, `server="`+server+`"`)]; s <= 0 || s > 5 {
		t.Errorf("resumed handshake time sum %v s", s)
	}

	// Revoke client A: its next connection, offering its ticket, is refused
	// before the ticket is accepted and then on the full handshake: one
	// refused handshake.
	sum := sha256.Sum256(set.ClientA.Cert.Raw)
	body, _ := json.Marshal(map[string]string{"sha256": hex.EncodeToString(sum[:])})
	resp, err := http.Post(tester.AdminURL("/tls_resume/revoke"), "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %v %v", resp, err)
	}
	resp.Body.Close()
	if _, err := harness.Handshake(ctx, addr, a13); err == nil {
		t.Fatal("revoked client A connected")
	}
	m2 := scrape(t, tester)
	for key, want := range map[string]float64{
		series("handshake_refusals_total", `reason="revoked"`, `server="`+server+`"`): 1,
		series("ticket_rejections_total", `reason="revoked"`):                         1,
	} {
		if got := delta(m2, key); got != want {
			t.Errorf("%s grew by %v, want %v", key, got, want)
		}
	}

	// Status: the resumption ratio and the refusals.
	resp, err = http.Get(tester.AdminURL("/tls_resume/status"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Handshakes struct {
			Total           uint64  `json:"total"`
			ResumptionRatio float64 `json:"resumption_ratio"`
		} `json:"handshakes"`
		Refusals map[string]uint64 `json:"refusals"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Handshakes.Total == 0 || st.Handshakes.ResumptionRatio <= 0 || st.Handshakes.ResumptionRatio >= 1 || st.Refusals["revoked"] < 1 || st.Refusals["verifier"] < 1 {
		t.Fatalf("status %+v", st)
	}
}
