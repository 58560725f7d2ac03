// Package upstream tests the http_resume reverse-proxy transport end to end:
// an in-process Caddy edge proxying over mTLS, with upstream keep-alive off,
// to real upstreams — Go crypto/tls servers, nginx, and Caddy processes
// running the tls_resume app on one shared ring.
package upstream

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	_ "github.com/tlsresume/caddy-tlsresume"
	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// edge is the in-process Caddy acting as the reverse proxy.
type edge struct {
	t      *testing.T
	tester *harness.Tester
	URL    string // http://127.0.0.1:PORT
	client *http.Client
}

// transportOptions renders the http_resume options for an mTLS upstream
// from the test PKI, keep-alive off (a new upstream connection per request),
// plus any extra lines.
func transportOptions(files pki.SetFiles, extra ...string) string {
	lines := append([]string{
		"tls_client_auth " + files.ClientACert + " " + files.ClientAKey,
		"tls_trust_pool file " + files.CA,
		"keepalive off",
	}, extra...)
	return "\t\t\t" + strings.Join(lines, "\n\t\t\t")
}

// startEdge loads site (the body of an http:// site block on a free port)
// into the in-process Caddy.
func startEdge(t *testing.T, globals, site string) *edge {
	t.Helper()
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	cfg := fmt.Sprintf("{\n%s\n}\n\nhttp://127.0.0.1:%d {\n%s\n}\n", globals, port, site)
	tester.InitServer(cfg, "caddyfile")
	return &edge{
		t:      t,
		tester: tester,
		URL:    "http://127.0.0.1:" + strconv.Itoa(port),
		client: &http.Client{Timeout: 15 * time.Second},
	}
}

// get sends GET path to the edge and returns the response body and the
// X-Backend header, failing the test on anything but 200.
func (e *edge) get(path string) (body, backend string) {
	e.t.Helper()
	resp, err := e.client.Get(e.URL + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %s: %s", path, resp.Status, b)
	}
	return strings.TrimSpace(string(b)), resp.Header.Get("X-Backend")
}

// handshakes scrapes the edge's /metrics (Caddy's own registry, as an
// operator would) and returns the upstream handshake counters.
func (e *edge) handshakes() (resumed, full float64) {
	e.t.Helper()
	resp, err := e.client.Get(e.tester.AdminURL("/metrics"))
	if err != nil {
		e.t.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for label, dst := range map[string]*float64{`{resumed="true"}`: &resumed, `{resumed="false"}`: &full} {
			prefix := "caddy_tls_resume_upstream_handshakes_total" + label + " "
			if v, ok := strings.CutPrefix(line, prefix); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					e.t.Fatalf("metric line %q: %v", line, err)
				}
				*dst = f
				found++
			}
		}
	}
	if err := sc.Err(); err != nil {
		e.t.Fatal(err)
	}
	if found == 0 {
		e.t.Fatal("caddy_tls_resume_upstream_handshakes_total not exposed on the edge's /metrics")
	}
	return resumed, full
}

// counter remembers metric values to report deltas.
type counter struct {
	e             *edge
	resumed, full float64
}

func (e *edge) counter() *counter {
	r, f := e.handshakes()
	return &counter{e: e, resumed: r, full: f}
}

func (c *counter) delta() (resumed, full float64) {
	r, f := c.e.handshakes()
	return r - c.resumed, f - c.full
}

// requireResumeRate checks that of n handshakes after the first, at least
// 99% resumed.
func requireResumeRate(t *testing.T, what string, resumed, total int64) {
	t.Helper()
	if total < 2 {
		t.Fatalf("%s: only %d handshakes", what, total)
	}
	rate := float64(resumed) / float64(total-1)
	t.Logf("%s: %d of %d handshakes after the first resumed (%.1f%%)", what, resumed, total-1, 100*rate)
	if rate < 0.99 {
		t.Errorf("%s: resumption rate %.3f < 0.99", what, rate)
	}
}

func requireTLSResumeApp(t *testing.T) {
	t.Helper()
	if _, err := caddy.GetModule("tls_resume"); err != nil {
		t.Skipf("the tls_resume app is not available in this build: %v", err)
	}
}
