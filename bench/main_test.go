package main

import (
	"io"
	"slices"
	"strings"
	"testing"
)

// TestParseOptionsRejects: every bad setting fails with a message naming the
// flag and the value.
func TestParseOptionsRejects(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-rounds", "0"}, "-rounds: must be at least 1, got 0"},
		{[]string{"-duration", "-1s"}, "-duration: must be positive, got -1s"},
		{[]string{"-latency-duration", "0s"}, "-latency-duration: must be positive"},
		{[]string{"-concurrency", "0"}, "-concurrency: must be at least 1, got 0"},
		{[]string{"-servers", "plugin,lighttpd"}, `-servers: unknown server "lighttpd"`},
		{[]string{"-servers", ","}, "-servers: name at least one server"},
		{[]string{"-chains", "ed25519"}, `-chains: "ed25519" is not "ecdsa", "rsa" or "ecdsa1"`},
		{[]string{"-tls", "1.1"}, `-tls: "1.1" is not "1.2" or "1.3"`},
		{[]string{"-fleet-nodes", "1"}, "-fleet-nodes: a fleet needs at least 2 nodes, got 1"},
		{[]string{"-fleet-rotation", "100ms"}, "-fleet-rotation: must be at least 1s, got 100ms"},
		{[]string{"-fleet-duration", "2s", "-fleet-rotation", "5s"}, "-fleet-duration: 2s is shorter than one rotation"},
		{[]string{"-fleet-concurrency", "0"}, "-fleet-concurrency: must be at least 1, got 0"},
		{[]string{"-server-cpus", "x"}, `-server-cpus: "x" is not a CPU number or range`},
		{[]string{"-client-cpus", "3-1"}, `-client-cpus: "3-1" is not a CPU range`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseOptions(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseOptions(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
	}
}

func TestParseOptionsDefaults(t *testing.T) {
	o, err := parseOptions(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range o.servers {
		ids = append(ids, s.id)
	}
	if !slices.Equal(ids, []string{"plugin", "caddy", "nginx", "haproxy", "floor"}) {
		t.Errorf("servers = %v", ids)
	}
	if o.matrix.rounds < 2 {
		t.Errorf("default rounds %d: pairwise ratios need several rounds", o.matrix.rounds)
	}
	if o.command != "make bench" {
		t.Errorf("command = %q", o.command)
	}
	o, err = parseOptions([]string{"-rounds", "1", "-skip-fleet"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.command != "make bench BENCH_ARGS='-rounds 1 -skip-fleet'" {
		t.Errorf("command = %q", o.command)
	}
}

func TestCPUPlan(t *testing.T) {
	for _, tc := range []struct {
		server, client string
		ncpu           int
		wantServer     string
		wantClient     []int
		wantErr        string
	}{
		{"auto", "auto", 2, "0", []int{1}, ""},
		{"auto", "auto", 4, "0", []int{1, 2, 3}, ""},
		{"auto", "auto", 1, "", nil, ""},
		{"none", "auto", 4, "", nil, ""},
		{"0-1", "auto", 4, "0-1", []int{2, 3}, ""},
		{"1", "0", 2, "1", []int{0}, ""},
		{"0", "none", 2, "0", nil, ""},
		{"2", "auto", 2, "", nil, "CPU 2: this machine has CPUs 0 to 1"},
	} {
		s, c, err := cpuPlan(tc.server, tc.client, tc.ncpu)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("cpuPlan(%q, %q, %d): err %v, want %q", tc.server, tc.client, tc.ncpu, err, tc.wantErr)
			}
			continue
		}
		if err != nil || s != tc.wantServer || !slices.Equal(c, tc.wantClient) {
			t.Errorf("cpuPlan(%q, %q, %d) = %q, %v, %v; want %q, %v", tc.server, tc.client, tc.ncpu, s, c, err, tc.wantServer, tc.wantClient)
		}
	}
}
