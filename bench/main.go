// Command bench is the comparative benchmark of caddy-tlsresume: in one run
// on one machine it starts Caddy with the plugin, stock Caddy of the same
// version, nginx and HAProxy with the same certificates and client
// authentication required, drives each with the same load generator, and
// writes BENCHMARKS.md with a chart. See README.md in this directory.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the command line's settings.
type options struct {
	matrix     matrixOptions
	fleet      fleetOptions
	servers    []*server
	chains     []string // chain slugs: "ecdsa", "rsa"
	versions   []string // "1.3", "1.2"
	skipFleet  bool
	out        string // BENCHMARKS.md
	chart      string // SVG chart
	jsonOut    string // raw results
	serverCPUs string // taskset CPU list, "" = not pinned
	clientCPUs []int  // nil = not pinned
	keep       bool
	command    string
	render     string // results JSON to turn into a report without measuring
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.matrix.rounds, "rounds", 3, "rounds over every server and cell; ratios are taken within each round")
	fs.DurationVar(&o.matrix.duration, "duration", 3*time.Second, "length of each measurement under load")
	fs.DurationVar(&o.matrix.latencyDuration, "latency-duration", time.Second, "length of each one-client latency measurement")
	fs.IntVar(&o.matrix.concurrency, "concurrency", 8, "concurrent connections under load")
	serverList := fs.String("servers", "plugin,caddy,nginx,haproxy,floor", "servers to compare, in order")
	chainList := fs.String("chains", "ecdsa,rsa,ecdsa1", "certificate chains: ecdsa (P-256), rsa (2048), ecdsa1 (P-256, leaves signed by the root)")
	versionList := fs.String("tls", "1.3,1.2", "TLS versions")
	fs.IntVar(&o.fleet.nodes, "fleet-nodes", 3, "nodes in each fleet")
	fs.DurationVar(&o.fleet.duration, "fleet-duration", 25*time.Second, "length of each fleet run")
	fs.DurationVar(&o.fleet.rotation, "fleet-rotation", 5*time.Second, "ticket key rotation interval in the fleets")
	fs.IntVar(&o.fleet.concurrency, "fleet-concurrency", 4, "round-robin clients in each fleet run")
	fs.BoolVar(&o.skipFleet, "skip-fleet", false, "measure no fleets")
	fs.StringVar(&o.out, "out", filepath.Join(moduleDir(), "..", "BENCHMARKS.md"), "report to write")
	fs.StringVar(&o.chart, "chart", filepath.Join(moduleDir(), "..", "docs", "benchmarks-handshakes.svg"), "chart to write (the report links it by its path relative to the report)")
	fs.StringVar(&o.jsonOut, "json", "", "raw results to write as JSON (default: results/<time>.json in the bench directory)")
	serverCPUs := fs.String("server-cpus", "auto", `CPUs for the servers as a taskset list ("auto": CPU 0 when there are two or more, "none": not pinned)`)
	clientCPUs := fs.String("client-cpus", "auto", `CPUs for the load generator ("auto": every CPU but the servers', "none": not pinned)`)
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs) after the run")
	fs.StringVar(&o.render, "render", "", "write the report and chart from this results JSON file instead of measuring")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case o.matrix.rounds < 1:
		return o, fmt.Errorf("-rounds: must be at least 1, got %d", o.matrix.rounds)
	case o.matrix.duration <= 0:
		return o, fmt.Errorf("-duration: must be positive, got %s", o.matrix.duration)
	case o.matrix.latencyDuration <= 0:
		return o, fmt.Errorf("-latency-duration: must be positive, got %s", o.matrix.latencyDuration)
	case o.matrix.concurrency < 1:
		return o, fmt.Errorf("-concurrency: must be at least 1, got %d", o.matrix.concurrency)
	case o.fleet.nodes < 2:
		return o, fmt.Errorf("-fleet-nodes: a fleet needs at least 2 nodes, got %d", o.fleet.nodes)
	case o.fleet.rotation < time.Second:
		return o, fmt.Errorf("-fleet-rotation: must be at least 1s, got %s", o.fleet.rotation)
	case o.fleet.duration < o.fleet.rotation:
		return o, fmt.Errorf("-fleet-duration: %s is shorter than one rotation (-fleet-rotation %s)", o.fleet.duration, o.fleet.rotation)
	case o.fleet.concurrency < 1:
		return o, fmt.Errorf("-fleet-concurrency: must be at least 1, got %d", o.fleet.concurrency)
	}
	for _, id := range splitList(*serverList) {
		s, err := serverByID(id)
		if err != nil {
			return o, err
		}
		o.servers = append(o.servers, s)
	}
	if len(o.servers) == 0 {
		return o, errors.New("-servers: name at least one server")
	}
	for _, c := range splitList(*chainList) {
		if c != "ecdsa" && c != "rsa" && c != "ecdsa1" {
			return o, fmt.Errorf(`-chains: %q is not "ecdsa", "rsa" or "ecdsa1"`, c)
		}
		o.chains = append(o.chains, c)
	}
	for _, v := range splitList(*versionList) {
		if v != "1.2" && v != "1.3" {
			return o, fmt.Errorf(`-tls: %q is not "1.2" or "1.3"`, v)
		}
		o.versions = append(o.versions, v)
	}
	if len(o.chains) == 0 || len(o.versions) == 0 {
		return o, errors.New("-chains and -tls: name at least one of each")
	}
	var err error
	if o.serverCPUs, o.clientCPUs, err = cpuPlan(*serverCPUs, *clientCPUs, onlineCPUs()); err != nil {
		return o, err
	}
	o.command = "make bench"
	if len(args) > 0 {
		o.command += " BENCH_ARGS='" + strings.Join(args, " ") + "'"
	}
	return o, nil
}

// cpuPlan decides where servers and the load generator run. By default, on
// a machine with two or more CPUs, servers get CPU 0 and the load generator
// the rest, so every server has the same one core and the client never
// takes CPU from it.
func cpuPlan(server, client string, ncpu int) (string, []int, error) {
	if server == "auto" {
		server = "none"
		if ncpu >= 2 {
			server = "0"
		}
	}
	if server == "none" {
		server = ""
	}
	serverSet, err := parseCPUList(server)
	if err != nil {
		return "", nil, fmt.Errorf("-server-cpus: %w", err)
	}
	var clientSet []int
	switch client {
	case "none":
	case "auto":
		if len(serverSet) > 0 {
			for c := range ncpu {
				if !slices.Contains(serverSet, c) {
					clientSet = append(clientSet, c)
				}
			}
		}
	default:
		if clientSet, err = parseCPUList(client); err != nil {
			return "", nil, fmt.Errorf("-client-cpus: %w", err)
		}
	}
	for _, c := range append(slices.Clone(serverSet), clientSet...) {
		if c >= ncpu {
			return "", nil, fmt.Errorf("CPU %d: this machine has CPUs 0 to %d", c, ncpu-1)
		}
	}
	return server, clientSet, nil
}

// parseCPUList parses a taskset-style list such as "0", "1-3" or "0,2".
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, part := range splitList(s) {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("%q is not a CPU number or range", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a CPU range", part)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// results is everything one run measured: the JSON file and the report
// are made from it.
type results struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Command  string            `json:"command"`
	Machine  machine           `json:"machine"`
	Settings settings          `json:"settings"`
	Matrix   []*cellResult     `json:"matrix"`
	Fleet    []fleetResult     `json:"fleet"`
	Servers  []serverInfo      `json:"servers"`
	Versions map[string]string `json:"versions"`
}

// settings records the knobs the run used.
type settings struct {
	Rounds           int     `json:"rounds"`
	DurationS        float64 `json:"duration_s"`
	LatencyDurationS float64 `json:"latency_duration_s"`
	Concurrency      int     `json:"concurrency"`
	ServerCPUs       string  `json:"server_cpus"`
	ClientCPUs       []int   `json:"client_cpus"`
}

// serverInfo names a server of the run.
type serverInfo struct {
	ID          string `json:"id"`
	Label       string `json:"label"`
	ResumesMTLS bool   `json:"resumes_mtls"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "soak" {
		return runSoak(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "scale" {
		return runScale(ctx, args[1:], stdout, stderr)
	}
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.render != "" {
		return renderSaved(o, stdout)
	}
	res := &results{Started: time.Now(), Command: o.command, Versions: map[string]string{}}

	work, err := os.MkdirTemp("", "tlsresume-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintf(stderr, "work directory: %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	e := &benchEnv{dir: work, serverCPUs: o.serverCPUs}
	needs := func(id string) bool {
		return slices.ContainsFunc(o.servers, func(s *server) bool { return s.id == id })
	}
	if needs("nginx") || needs("haproxy") {
		if e.nginxBin, e.haproxyBin, err = ensureServers(); err != nil {
			return err
		}
	}
	fmt.Fprintln(stderr, "building stock Caddy and Caddy with the plugin…")
	if e.stockBin, e.pluginBin, err = buildCaddys(filepath.Join(work, "bin")); err != nil {
		return err
	}
	res.Versions = collectVersions(e)
	res.Machine = describeMachine()

	all, err := newChains(filepath.Join(work, "pki"))
	if err != nil {
		return err
	}
	chains := selectChains(all, o.chains)
	if o.clientCPUs != nil {
		if err := pinSelf(o.clientCPUs); err != nil {
			return err
		}
	}
	res.Settings = settings{
		Rounds: o.matrix.rounds, DurationS: o.matrix.duration.Seconds(), LatencyDurationS: o.matrix.latencyDuration.Seconds(),
		Concurrency: o.matrix.concurrency, ServerCPUs: o.serverCPUs, ClientCPUs: o.clientCPUs,
	}

	cs := filterCells(cells(chains), o.versions)
	steps := 0
	for _, c := range cs {
		for _, s := range o.servers {
			if runsIn(s, c) {
				steps += o.matrix.rounds
			}
		}
	}
	if !o.skipFleet {
		steps += len(fleetSetups)
	}
	prog := newProgress(stderr, steps)

	var running []*runningServer
	defer func() {
		for _, rs := range running {
			rs.proc.stop()
		}
	}()
	for _, s := range o.servers {
		fmt.Fprintf(stderr, "starting %s…\n", s.label)
		rs, err := s.start(ctx, e, chains)
		if err != nil {
			return fmt.Errorf("%s: %w", s.label, err)
		}
		rs.server = s
		running = append(running, rs)
		res.Servers = append(res.Servers, serverInfo{ID: s.id, Label: s.label, ResumesMTLS: s.resumesMTLS})
	}
	if res.Matrix, err = runMatrix(ctx, o.matrix, chains, cs, running, prog); err != nil {
		return err
	}
	for _, rs := range running {
		rs.proc.stop()
	}
	running = nil

	if !o.skipFleet {
		for _, setup := range fleetSetups {
			fr, err := runFleet(ctx, e, o.fleet, setup, chains[0], prog)
			if err != nil {
				return fmt.Errorf("fleet %s: %w", setup.Label, err)
			}
			res.Fleet = append(res.Fleet, fr)
		}
	}
	res.Finished = time.Now()
	return writeOutputs(res, o, stdout)
}

// selectChains keeps the chains named by slug, in the order given.
func selectChains(all []*chain, slugs []string) []*chain {
	var out []*chain
	for _, s := range slugs {
		for _, c := range all {
			if c.slug == s {
				out = append(out, c)
			}
		}
	}
	return out
}

// filterCells keeps the cells of the given TLS versions.
func filterCells(cs []cell, versions []string) []cell {
	return slices.DeleteFunc(cs, func(c cell) bool { return !slices.Contains(versions, c.Version) })
}

// renderSaved writes the report and chart of a saved run.
func renderSaved(o options, stdout io.Writer) error {
	b, err := os.ReadFile(o.render)
	if err != nil {
		return fmt.Errorf("-render: %w", err)
	}
	var res results
	if err := json.Unmarshal(b, &res); err != nil {
		return fmt.Errorf("-render: %s: %w", o.render, err)
	}
	for i := range res.Fleet {
		// Fleet setups are stored by value; point them back at the known ones.
		for _, s := range fleetSetups {
			if res.Fleet[i].Setup != nil && res.Fleet[i].Setup.ID == s.ID {
				res.Fleet[i].Setup = s
			}
		}
	}
	return writeReport(&res, o, stdout)
}

// writeOutputs writes the JSON results, the report and the chart, and
// prints the report's summary.
func writeOutputs(res *results, o options, stdout io.Writer) error {
	jsonPath := o.jsonOut
	if jsonPath == "" {
		jsonPath = filepath.Join(moduleDir(), "results", res.Started.UTC().Format("20060102T150405Z")+".json")
	}
	if err := os.MkdirAll(filepath.Dir(jsonPath), 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(jsonPath, js, 0o644); err != nil {
		return err
	}
	if err := writeReport(res, o, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "raw results: %s\n", jsonPath)
	return nil
}

// writeReport writes the report and the chart, and prints the summary.
func writeReport(res *results, o options, stdout io.Writer) error {
	chartRel, err := filepath.Rel(filepath.Dir(o.out), o.chart)
	if err != nil {
		chartRel = o.chart
	}
	rep := newReport(res)
	if err := os.MkdirAll(filepath.Dir(o.chart), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.chart, []byte(rep.chartSVG()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(o.out, []byte(rep.markdown(filepath.ToSlash(chartRel))), 0o644); err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.summary())
	fmt.Fprintf(stdout, "\nwrote %s and %s\n", o.out, o.chart)
	return nil
}
