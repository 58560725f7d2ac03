package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSoakShort is the soak in about 60 seconds, with every fault of the
// full run and the same assertions: four real Caddy nodes, real Redis,
// TLS 1.2, TLS 1.3 and HTTP/3 clients, rotations, reloads, Redis killed,
// restarted and frozen, the ring corrupted and repaired, an emergency
// rotation and 100 revocations.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real servers")
	}
	o, err := parseSoakOptions([]string{"-duration", "60s", "-rotation", "15s", "-reload", "10s", "-sample", "2s", "-quiet"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o.out = "" // RELIABILITY.md is the full run's
	o.results = dir
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	a, err := soak(ctx, o, &stdout, &stderr)
	t.Logf("soak took %s\n%s", time.Since(start).Round(time.Second), stdout.String())
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, stderr.String())
	}
	if a.Rotations < 2 {
		t.Errorf("%d scheduled rotations counted in 60s at a 15s interval", a.Rotations)
	}
	if len(a.Phases) != 9 {
		t.Errorf("%d phases, want the baseline and 8 faults", len(a.Phases))
	}
	if a.Total.RevokedTried == 0 || a.Total.Early == 0 || a.Total.TooEarly == 0 {
		t.Errorf("revoked retries %d, 0-RTT requests %d, 425s %d: each must have happened", a.Total.RevokedTried, a.Total.Early, a.Total.TooEarly)
	}
	for _, f := range []string{"connections.csv", "soak.json", "soak.md", "timeline.svg"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestSoakAnalysis checks the classification on a made-up run: a revoked
// client answered after the grace period (the poll interval, its jitter
// and a second) counts as admitted, one answered within it does not, a failure
// during its node's reload is counted apart, one elsewhere fails the run,
// a ticket whose early data was accepted twice fails it, and a climbing
// goroutine count is flagged.
func TestSoakAnalysis(t *testing.T) {
	s := func(at, end int, node, id int, doomed, ok bool) connSample {
		return connSample{At: time.Duration(at) * time.Second, End: time.Duration(end) * time.Second, Node: node, ID: id, Doomed: doomed, OK: ok, Err: map[bool]string{false: "boom"}[ok]}
	}
	res := &soakResult{
		Duration: 100 * time.Second,
		Events: []soakEvent{
			{At: 10 * time.Second, Done: 11 * time.Second, Kind: "reload node1", Node: 1},
			{At: 50 * time.Second, Done: 51 * time.Second, Kind: "1 certificates revoked", Phase: "revoked", Node: -1},
		},
		Samples: []connSample{
			s(1, 2, 0, 0, false, true), s(3, 4, 0, 0, false, true), // resumable
			s(10, 11, 1, 1, false, false), // lost to the reload
			s(20, 21, 2, 2, false, false), // a real failure
			s(40, 41, 0, 40, true, true),  // revoked client before revocation
			s(50, 51, 0, 40, true, false), // grace
			// 2.5 s after the revocation: past one poll interval, within
			// its jitter and the poll's work: still grace, not admitted.
			{At: 52500 * time.Millisecond, End: 53 * time.Second, Node: 0, ID: 40, Doomed: true, OK: true},
			s(60, 61, 0, 40, true, true), // admitted: must fail
		},
		Replays:     []replaySample{{Stateful: true, Uses: 3, Accepted: 2}},
		Revocations: map[int][2]time.Duration{40: {50 * time.Second, 50 * time.Second}},
	}
	for i := range 30 {
		res.Resources = append(res.Resources, resourceSample{At: time.Duration(i) * 4 * time.Second, Node: "node0", Goroutines: 100 + 20*i, FDs: 50, RSS: 50 << 20})
		// A plateau after a climb is not growth.
		res.Resources = append(res.Resources, resourceSample{At: time.Duration(i) * 4 * time.Second, Node: "node1", Goroutines: min(100+20*i, 300), FDs: 50, RSS: 50 << 20})
	}
	a := analyseSoak(res, soakOptions{poll: 2 * time.Second})
	if a.Total.Failed != 1 || a.Total.ReloadLost != 1 || a.Total.RevokedOK != 1 || a.Total.RevokedTried != 1 {
		t.Errorf("failed %d, lost to reload %d, revoked admitted %d of %d; want 1, 1, 1 of 1", a.Total.Failed, a.Total.ReloadLost, a.Total.RevokedOK, a.Total.RevokedTried)
	}
	all := strings.Join(a.Failures, "\n")
	for _, want := range []string{"1 connections of clients that were not revoked failed", "answered 200", "accepted 2 times", "goroutines still growing"} {
		if !strings.Contains(all, want) {
			t.Errorf("failures lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "node1") {
		t.Errorf("a plateau was flagged as growth:\n%s", all)
	}
	if len(a.Phases) != 2 || a.Phases[1].Name != "revoked" {
		t.Errorf("phases %+v", a.Phases)
	}
}

func TestWriteSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "R.md")
	if err := os.WriteFile(path, []byte("# R\n\nhand-written\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"first\n", "second\n"} {
		if err := writeSection(path, body); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	got := string(b)
	if !strings.Contains(got, "hand-written") || !strings.Contains(got, "second") || strings.Contains(got, "first") || strings.Count(got, sectionBegin) != 1 {
		t.Errorf("file:\n%s", got)
	}
}

// TestSoakMemoryOptions: -heap-profiles takes times within the run,
// -idle-timeout a positive duration that reaches the nodes' Caddyfile.
func TestSoakMemoryOptions(t *testing.T) {
	o, err := parseSoakOptions([]string{"-duration", "4m", "-heap-profiles", "1m, 3m", "-idle-timeout", "10s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.heapAt) != 2 || o.heapAt[0] != time.Minute || o.heapAt[1] != 3*time.Minute {
		t.Errorf("heapAt = %v", o.heapAt)
	}
	site := soakSite(&soakNode{name: "node0", port: 1, adminPort: 2}, "/s", "", "c", "k", "ca", o)
	if !strings.Contains(site, "timeouts {\n\t\t\tidle 10s\n\t\t}") {
		t.Errorf("no idle timeout in:\n%s", site)
	}
	for _, args := range [][]string{
		{"-duration", "4m", "-heap-profiles", "5m"},
		{"-heap-profiles", "2m,x"},
		{"-heap-profiles", "0s"},
		{"-idle-timeout", "-1s"},
		{"-idle-timeout", "soon"},
	} {
		if _, err := parseSoakOptions(args, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}
