package cli

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var benchLine = regexp.MustCompile(`(?m)^(full|resumed)\s+[\d.]+ handshakes/s  (\d+) handshakes \((\d+) resumed\) in \S+  p50 \S+  p99 \S+(  \d+ errors .*)?$`)

// benchCounts runs bench and returns mode → [handshakes, resumed].
func benchCounts(t *testing.T, o benchOptions) (map[string][2]int, string, string) {
	t.Helper()
	var out, progress bytes.Buffer
	if err := runBench(context.Background(), &out, &progress, o); err != nil {
		t.Fatalf("bench: %v\n%s", err, out.String())
	}
	got := map[string][2]int{}
	for _, m := range benchLine.FindAllStringSubmatch(out.String(), -1) {
		n, _ := strconv.Atoi(m[2])
		r, _ := strconv.Atoi(m[3])
		got[m[1]] = [2]int{n, r}
	}
	return got, out.String(), progress.String()
}

func TestBench(t *testing.T) {
	set, files := probePKI(t)
	addr := startHTTPS(t, serverTLS(set))
	noTickets := serverTLS(set)
	noTickets.SessionTicketsDisabled = true
	addrNoTickets := startHTTPS(t, noTickets)
	client := probeOptions{serverName: "localhost", certFile: files.ClientACert, keyFile: files.ClientAKey, caFile: files.CA, timeout: 5 * time.Second}

	for _, proto := range []string{"1.2", "1.3"} {
		c := client
		c.proto, c.addr = proto, addr
		got, out, progress := benchCounts(t, benchOptions{probe: c, duration: 400 * time.Millisecond, concurrency: 2, mode: "both", progressEvery: 50 * time.Millisecond})
		full, resumed := got["full"], got["resumed"]
		if full[0] == 0 || full[1] != 0 || resumed[0] == 0 || resumed[1] != resumed[0] || strings.Contains(out, "errors") {
			t.Errorf("TLS %s: full %v resumed %v (handshakes, resumed):\n%s", proto, full, resumed, out)
		}
		if !strings.Contains(out, "resumed/full: ") {
			t.Errorf("TLS %s: no speed-up line:\n%s", proto, out)
		}
		if !strings.Contains(progress, "handshakes") {
			t.Errorf("TLS %s: no progress shown for a run of 8 intervals: %q", proto, progress)
		}
	}

	// A server that does not resume: resumed mode says so.
	c := client
	c.addr = addrNoTickets
	got, out, progress := benchCounts(t, benchOptions{probe: c, duration: 200 * time.Millisecond, concurrency: 1, mode: "resumed", progressEvery: time.Second})
	if r := got["resumed"]; r[0] == 0 || r[1] != 0 {
		t.Errorf("server without tickets: %v:\n%s", r, out)
	}
	if progress != "" {
		t.Errorf("progress on a short run: %q", progress)
	}
}

func TestBenchErrors(t *testing.T) {
	set, files := probePKI(t)
	addr := startHTTPS(t, serverTLS(set))
	// The server refuses a client without a certificate: reported, not
	// measured as successful handshakes.
	o := benchOptions{probe: probeOptions{addr: addr, serverName: "localhost", caFile: files.CA, proto: "1.3", timeout: 5 * time.Second},
		duration: 100 * time.Millisecond, concurrency: 1, mode: "full"}
	var out bytes.Buffer
	if err := runBench(context.Background(), &out, &out, o); err == nil || !strings.Contains(err.Error(), "full: first connection") {
		t.Errorf("refused client: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--mode", "fast", addr}, `--mode: "fast"`},
		{[]string{"--tls", "h3", addr}, "h3 is not supported"},
		{[]string{"--concurrency", "0", addr}, "--concurrency: must be at least 1"},
		{[]string{"--duration", "0s", addr}, "--duration: must be positive"},
		{[]string{"--tls", "1.0", addr}, `--tls: "1.0"`},
	} {
		cmd := findSubcommand(t, "bench")
		var buf bytes.Buffer
		cmd.SetOut(&buf)
		cmd.SetErr(&buf)
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
