package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunEndToEnd runs the whole harness, briefly: the four real servers
// (building both Caddy binaries, starting Debian's nginx and HAProxy), two
// rounds over ECDSA with TLS 1.2 and 1.3, and the three fleets through
// rotations. It checks what the report's claims rest on: every server
// served every connection, the servers that can resume mTLS did so on
// every resumed connection and stock Caddy on none, CPU accounting saw the
// work, and the plugin's fleet kept resuming through its rotations while
// stock Caddy's standard keys did not.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "BENCHMARKS.md")
	chart := filepath.Join(dir, "docs", "chart.svg")
	jsonOut := filepath.Join(dir, "results.json")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	err := run(ctx, []string{
		"-rounds", "2", "-duration", "400ms", "-latency-duration", "150ms", "-concurrency", "4",
		"-chains", "ecdsa", "-tls", "1.3,1.2",
		"-fleet-duration", "10s", "-fleet-rotation", "3s", "-fleet-concurrency", "2",
		"-out", out, "-chart", chart, "-json", jsonOut,
	}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("summary:\n%s", stdout.String())

	b, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Servers) != 5 {
		t.Fatalf("%d servers in the results, want 5", len(res.Servers))
	}
	resumes := map[string]bool{}
	for _, s := range res.Servers {
		resumes[s.ID] = s.ResumesMTLS
	}
	// ECDSA: 4 cells with X25519 and 2 (TLS 1.3) with the client's
	// default key exchange; the floor runs only in the 3 resumed ones.
	if len(res.Matrix) != 6*4+3 {
		t.Fatalf("%d cell results, want 27 (6 cells × 4 servers + 3 resumed cells for the floor)", len(res.Matrix))
	}
	for _, cr := range res.Matrix {
		if len(cr.Samples) != 2 {
			t.Errorf("%s %s: %d samples, want 2", cr.Server, cr.Cell, len(cr.Samples))
		}
		for _, s := range cr.Samples {
			where := cr.Server + ", " + cr.Cell.String()
			if s.Errors > 0 || s.HandshakesPerSec <= 0 {
				t.Errorf("%s: %d errors, %.0f handshakes/s", where, s.Errors, s.HandshakesPerSec)
			}
			if s.CPUPerHandshake <= 0 || s.ServerBusy <= 0 {
				t.Errorf("%s: CPU accounting saw no work (%.0f µs/handshake, busy %.2f)", where, s.CPUPerHandshake, s.ServerBusy)
			}
			if s.P50 <= 0 || s.P99 < s.P50 {
				t.Errorf("%s: latency p50 %.0f µs, p99 %.0f µs", where, s.P50, s.P99)
			}
			// Go takes the hybrid when offered first; OpenSSL 3.0 lacks it.
			if cr.Cell.Version == "1.3" {
				want := "X25519"
				if cr.Cell.KX == kxDefault && (cr.Server == "plugin" || cr.Server == "caddy" || cr.Server == "floor") {
					want = "X25519MLKEM768"
				}
				if s.Group != want {
					t.Errorf("%s: key exchange %q, want %q", where, s.Group, want)
				}
			}
			switch {
			case !cr.Cell.Resumed && s.ResumedFraction != 0:
				t.Errorf("%s: %.1f%% resumed in full mode", where, 100*s.ResumedFraction)
			case cr.Cell.Resumed && resumes[cr.Server] && s.ResumedFraction < 0.99:
				t.Errorf("%s: only %.1f%% resumed", where, 100*s.ResumedFraction)
			case cr.Cell.Resumed && !resumes[cr.Server] && s.ResumedFraction != 0:
				t.Errorf("%s: %.1f%% resumed, but this server cannot resume mTLS", where, 100*s.ResumedFraction)
			}
		}
	}

	rates := map[string]fleetResult{}
	for _, f := range res.Fleet {
		rates[f.Setup.ID] = f
	}
	if len(rates) != 3 {
		t.Fatalf("%d fleet results, want 3", len(rates))
	}
	// 10s spans three 3s rotations; a node counts one when it next wakes,
	// which a loaded 2-core machine can delay, so at least two must show.
	p := rates["plugin"]
	if p.Rotations < 2 || p.rate() < fleetTarget || p.Connections < 100 {
		t.Errorf("plugin fleet: %.3f%% of %d resumed over %d rotations; want ≥ 99.9%% over ≥ 2", 100*p.rate(), p.Connections, p.Rotations)
	}
	if s := rates["caddy-standard"]; s.rate() > 0.5 {
		t.Errorf("stock Caddy with standard keys resumed %.1f%% across nodes; each node has its own keys", 100*s.rate())
	}

	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## ECDSA P-256", "## Fleet", "](docs/chart.svg)", "## Machine and versions", "- caddy: v2."} {
		if !strings.Contains(string(md), want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
	if svg, err := os.ReadFile(chart); err != nil || !bytes.HasPrefix(svg, []byte("<svg")) {
		t.Errorf("chart: %v, starts %.20q", err, svg)
	}
}
