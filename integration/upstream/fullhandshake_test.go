package upstream

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// TestEdgeFullHandshakeEvery: a Go mTLS upstream swaps its certificate for
// one from a CA the edge does not trust, keeping its session ticket keys —
// a broken deployment that resumed sessions hide. Keep-alive is off, so
// every request is a new upstream connection.
//
// Without full_handshake_every every request keeps succeeding on resumed
// sessions: a resumed handshake carries no certificate, and Go's client
// re-checks only the stored chain (still valid against the edge's roots).
//
// With full_handshake_every 2s, a request within the interval after the
// last full handshake fails with 502 (a full handshake, verification
// fails), Caddy's passive health check counts the failure (visible on the
// admin API's /reverse_proxy/upstreams), the upstream is then unhealthy
// (503 without trying it), and the failure is counted in
// caddy_tls_resume_upstream_handshake_failures_total{reason="certificate"}.
func TestEdgeFullHandshakeEvery(t *testing.T) {
	set, files := harness.NewPKI(t)
	other, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	good, untrusted := set.Server.TLSCertificate(), other.Server.TLSCertificate()

	for _, every := range []string{"", "2s"} {
		t.Run("full_handshake_every="+every, func(t *testing.T) {
			var cert atomic.Pointer[tls.Certificate]
			cert.Store(&good)
			be := startGoBackend(t, goBackendOptions{name: "go", clientCAs: set.Root, certNow: cert.Load})
			var extra []string
			if every != "" {
				extra = append(extra, "full_handshake_every "+every)
			}
			e := startEdge(t, "", fmt.Sprintf(`	reverse_proxy https://%s {
		transport http_resume {
%s
		}
		fail_duration 1m
		max_fails 1
	}`, be.Addr, transportOptions(files, extra...)))

			for i := 0; i < 3; i++ {
				e.get("/")
			}
			if be.resumed.Load() != 2 {
				t.Fatalf("before the swap: %d of 3 handshakes resumed", be.resumed.Load())
			}
			swapped := time.Now()
			cert.Store(&untrusted)
			failuresBefore := e.metric(`caddy_tls_resume_upstream_handshake_failures_total{reason="certificate"}`)

			if every == "" {
				// Longer than the interval the other case uses.
				for time.Since(swapped) < 3*time.Second {
					if body, _ := e.get("/"); body != "backend=go resumed=true" {
						t.Fatalf("without the option: %q, want a resumed success", body)
					}
					time.Sleep(100 * time.Millisecond)
				}
				if n := e.metric(`caddy_tls_resume_upstream_handshake_failures_total{reason="certificate"}`) - failuresBefore; n != 0 {
					t.Errorf("%v failures counted without the option", n)
				}
				return
			}

			var failedAt time.Duration
			for {
				status, body := e.status("/")
				if status == http.StatusBadGateway {
					failedAt = time.Since(swapped)
					break
				}
				if status != http.StatusOK || body != "backend=go resumed=true" {
					t.Fatalf("before the failure: %d %q, want resumed successes", status, body)
				}
				if time.Since(swapped) > 5*time.Second {
					t.Fatal("no failure within 5s of the swap with full_handshake_every 2s")
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("first failure %s after the swap", failedAt.Round(time.Millisecond))
			if failedAt > 2*time.Second+500*time.Millisecond {
				t.Errorf("failure seen %s after the swap, want within the 2s interval", failedAt)
			}
			// Caddy's passive health check counted it...
			fails := e.upstreamFails(be.Addr)
			if fails != 1 {
				t.Errorf("admin API: upstream %s has %d fails, want 1", be.Addr, fails)
			}
			// ...so the upstream is down and requests are not sent to it.
			handshakes := be.handshakes.Load()
			if status, body := e.status("/"); status != http.StatusServiceUnavailable {
				t.Errorf("next request: %d %q, want 503 (no healthy upstream)", status, body)
			}
			if be.handshakes.Load() != handshakes {
				t.Error("the unhealthy upstream was dialed")
			}
			if n := e.metric(`caddy_tls_resume_upstream_handshake_failures_total{reason="certificate"}`) - failuresBefore; n != 1 {
				t.Errorf("%v certificate failures counted, want 1", n)
			}
		})
	}
}

// status sends GET path to the edge and returns the status and body.
func (e *edge) status(path string) (int, string) {
	e.t.Helper()
	resp, err := e.client.Get(e.URL + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// upstreamFails reads the passive health check's failure count of addr
// from the admin API.
func (e *edge) upstreamFails(addr string) int {
	e.t.Helper()
	resp, err := e.client.Get(e.tester.AdminURL("/reverse_proxy/upstreams"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var ups []struct {
		Address string `json:"address"`
		Fails   int    `json:"fails"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ups); err != nil {
		e.t.Fatal(err)
	}
	for _, u := range ups {
		if u.Address == addr {
			return u.Fails
		}
	}
	e.t.Fatalf("upstream %s not in %+v", addr, ups)
	return 0
}

// metric returns the value of one series on the edge's /metrics (0 when
// absent).
func (e *edge) metric(series string) float64 {
	e.t.Helper()
	resp, err := e.client.Get(e.tester.AdminURL("/metrics"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return 0
}
