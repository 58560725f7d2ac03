package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// soakEvent is a fault or operation of the chaos schedule, as it happened.
type soakEvent struct {
	At    time.Duration `json:"at_ns"`
	Kind  string        `json:"kind"`
	Phase string        `json:"phase,omitempty"` // starts this phase of the report
	Done  time.Duration `json:"done_ns"`
	Node  int           `json:"node"` // the node a reload was of (-1: none)
	Err   string        `json:"err,omitempty"`
}

// resourceSample is one node's resource use at one moment.
type resourceSample struct {
	At         time.Duration `json:"at_ns"`
	Node       string        `json:"node"`
	RSS        int64         `json:"rss_bytes"`
	FDs        int           `json:"fds"`
	Goroutines int           `json:"goroutines"`
	// HeapInuse is the Go heap's spans in use (go_memstats_heap_inuse_bytes:
	// live objects and what the last collection has not yet reclaimed).
	HeapInuse int64  `json:"heap_inuse_bytes"`
	Rotations int    `json:"rotations"`
	Err       string `json:"err,omitempty"`
}

// chaosStep is one planned event.
type chaosStep struct {
	at    time.Duration
	kind  string
	phase string
	node  int // the node a reload is of, else -1
	do    func(ctx context.Context) error
}

// chaosPlan is the schedule for a run of duration d: the faults at fixed
// fractions of the run so the short soak has every one of them; reloads
// every o.reload; scheduled rotations come from the ring itself.
func (r *soakRun) chaosPlan() []chaosStep {
	e, d := r.e, r.e.o.duration
	frac := func(f float64) time.Duration { return time.Duration(f * float64(d)) }
	down := min(max(3*time.Second, d/60), 10*time.Second)
	var plan []chaosStep
	kill := frac(0.15)
	plan = append(plan,
		chaosStep{kill, "redis killed (SIGKILL)", "Redis killed", -1, func(context.Context) error { e.redis.Kill(); return nil }},
		chaosStep{kill + down, "redis restarted (empty)", "Redis back, empty", -1, func(context.Context) error { return e.redis.Restart() }},
	)
	pause := frac(0.27)
	plan = append(plan,
		chaosStep{pause, "redis frozen (SIGSTOP)", "Redis frozen 5 s", -1, func(context.Context) error { return e.redis.Pause() }},
		chaosStep{pause + 5*time.Second, "redis thawed (SIGCONT)", "Redis thawed", -1, func(context.Context) error { return e.redis.Resume() }},
	)
	corrupt := frac(0.40)
	plan = append(plan,
		chaosStep{corrupt, "ring document corrupted", "ring corrupted", -1, func(context.Context) error { return corruptFile(e.ringDoc) }},
		// What the runbook says to do: remove the damaged document; the
		// nodes write back the ring they hold.
		chaosStep{corrupt + 3*e.o.poll, "ring document removed by the operator", "ring repaired", -1, func(context.Context) error { return os.Remove(e.ringDoc) }},
	)
	// After the repair: a corrupt document is never overwritten, so a
	// rotation cannot be written while it is there.
	emergency := max(frac(0.52), corrupt+3*e.o.poll+2*time.Second)
	plan = append(plan, chaosStep{emergency, "emergency rotation", "emergency rotation", -1, func(ctx context.Context) error { return e.rotate(ctx, true) }})
	plan = append(plan, chaosStep{frac(0.65), fmt.Sprintf("%d certificates revoked", e.o.revoked), "revoked", -1, func(ctx context.Context) error {
		for _, id := range e.ids[e.o.clients:] {
			if err := e.revoke(ctx, id); err != nil {
				return fmt.Errorf("certificate %d: %w", id.id, err)
			}
		}
		return nil
	}})
	for i, at := 0, e.o.reload; at < d-2*time.Second; i, at = i+1, at+e.o.reload {
		n := e.nodes[i%len(e.nodes)]
		plan = append(plan, chaosStep{at, "reload " + n.name, "", i % len(e.nodes), func(ctx context.Context) error { return e.reload(ctx, n) }})
	}
	return plan
}

// corruptFile overwrites the middle of a file with garbage (same size).
func corruptFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	for i := len(b) / 3; i < 2*len(b)/3; i++ {
		b[i] = 'A' + byte(i%26)
	}
	return os.WriteFile(path, b, 0o600)
}

// runChaos carries out plan in time order; each step runs in its own
// goroutine at its time (a revocation of 100 certificates takes a while
// and must not delay a reload).
func (r *soakRun) runChaos(ctx context.Context, plan []chaosStep, events *[]soakEvent, mu *sync.Mutex, stderr io.Writer) {
	var wg sync.WaitGroup
	for _, st := range plan {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(r.start.Add(st.at))):
			}
			ev := soakEvent{At: time.Since(r.start), Kind: st.kind, Phase: st.phase, Node: st.node}
			if err := st.do(ctx); err != nil {
				ev.Err = err.Error()
			}
			ev.Done = time.Since(r.start)
			if !r.e.o.quiet && st.phase != "" {
				fmt.Fprintf(stderr, "soak: %6.1fs %s%s\n", ev.At.Seconds(), st.kind, errSuffix(ev.Err))
			}
			mu.Lock()
			*events = append(*events, ev)
			mu.Unlock()
		}()
	}
	wg.Wait()
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return ": ERROR " + s
}

// sampleResources reads every node's RSS, open descriptors, goroutines and
// rotation count every o.sample until the deadline.
func (r *soakRun) sampleResources(ctx context.Context, deadline time.Time, out *[]resourceSample, mu *sync.Mutex) {
	for {
		for _, n := range r.e.nodes {
			s := resourceSample{At: time.Since(r.start), Node: n.name}
			var errs []string
			pid := n.proc.pid()
			if rss, err := procRSS(pid); err == nil {
				s.RSS = rss
			} else {
				errs = append(errs, err.Error())
			}
			if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
				s.FDs = len(ents)
			} else {
				errs = append(errs, err.Error())
			}
			m, err := scrapeGauges(n.adminURL("/metrics"), "go_goroutines", "go_memstats_heap_inuse_bytes", "caddy_tls_resume_ring_rotations_total")
			if _, ok := m["go_goroutines"]; err == nil && !ok {
				err = fmt.Errorf("%s: no go_goroutines", n.adminURL("/metrics"))
			}
			if err == nil {
				s.Goroutines, s.HeapInuse = int(m["go_goroutines"]), int64(m["go_memstats_heap_inuse_bytes"])
				s.Rotations = int(m["caddy_tls_resume_ring_rotations_total"])
			} else {
				errs = append(errs, err.Error())
			}
			s.Err = strings.Join(errs, "; ")
			mu.Lock()
			*out = append(*out, s)
			mu.Unlock()
		}
		if time.Now().After(deadline) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(r.e.o.sample, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// scrapeGauges reads unlabelled series from a Prometheus text page (one
// request); a series not on the page is missing from the map.
func scrapeGauges(url string, names ...string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		for _, name := range names {
			if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				v, err := strconv.ParseFloat(rest, 64)
				if err != nil {
					return nil, fmt.Errorf("%s: %s: %w", url, name, err)
				}
				m[name] = v
			}
		}
	}
	return m, sc.Err()
}

// saveHeapProfiles saves every node's heap profile (after a forced
// collection, so in-use figures are live objects) at each of o.heapAt into
// dir, as heap-<node>-<at>.pb.gz for `go tool pprof`. A node that cannot
// answer (reloading) is tried again for a few seconds.
func (r *soakRun) saveHeapProfiles(ctx context.Context, dir string, stderr io.Writer) {
	for _, at := range r.e.o.heapAt {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(r.start.Add(at))):
		}
		for _, n := range r.e.nodes {
			file := filepath.Join(dir, fmt.Sprintf("heap-%s-%s.pb.gz", n.name, at))
			var err error
			for try := 0; try < 5; try++ {
				if err = fetchToFile(ctx, n.adminURL("/debug/pprof/heap?gc=1"), file); err == nil {
					break
				}
				time.Sleep(time.Second)
			}
			if err != nil && !r.e.o.quiet {
				fmt.Fprintf(stderr, "soak: heap profile of %s at %s: %v\n", n.name, at, err)
			}
		}
	}
}

func fetchToFile(ctx context.Context, url, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// procRSS is a process's resident set size from /proc.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// soakResult is everything one soak measured.
type soakResult struct {
	Started   time.Time         `json:"started"`
	Duration  time.Duration     `json:"duration_ns"`
	Options   map[string]string `json:"options"`
	Command   string            `json:"command"`
	Machine   machine           `json:"machine"`
	Versions  map[string]string `json:"versions"`
	Events    []soakEvent       `json:"events"`
	Resources []resourceSample  `json:"resources"`
	Samples   []connSample      `json:"-"` // written as CSV
	Replays   []replaySample    `json:"replays"`
	// Revocations maps a revoked identity to when its revocation was
	// requested and answered, since the run began.
	Revocations map[int][2]time.Duration `json:"revocations_ns"`
	// NodeLogs holds the end of each node's output, for failures.
	NodeLogs map[string]string `json:"node_logs,omitempty"`
}

// runSoak is `bench soak`: it runs the soak, writes the raw samples and
// the report, and fails when an assertion fails.
func runSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseSoakOptions(args, stderr)
	if err != nil {
		return err
	}
	_, err = soak(ctx, o, stdout, stderr)
	return err
}

// soak runs one soak with options o and returns its analysis; the error
// lists every failed assertion.
func soak(ctx context.Context, o soakOptions, stdout, stderr io.Writer) (*soakAnalysis, error) {
	e, err := startSoak(ctx, o, stderr)
	defer e.stop()
	if err != nil {
		return nil, err
	}
	res := &soakResult{Started: time.Now(), Command: o.command, Machine: describeMachine(), Versions: soakVersions(e), NodeLogs: map[string]string{}}
	res.Options = map[string]string{
		"duration": o.duration.String(), "clients": strconv.Itoa(o.clients), "revoked": strconv.Itoa(o.revoked),
		"stateless_clients": strconv.Itoa(o.stateless), "rotation_interval": o.rotation.String(), "poll_interval": o.poll.String(),
		"max_clock_skew": o.skew.String(), "reload_every": o.reload.String(), "think": o.think.String(),
	}
	if o.idleTimeout != "" {
		res.Options["idle_timeout"] = o.idleTimeout
	}
	r := &soakRun{e: e, start: time.Now()}
	deadline := r.start.Add(o.duration)
	runCtx, cancel := context.WithDeadline(ctx, deadline.Add(30*time.Second))
	defer cancel()

	var mu sync.Mutex
	var wg sync.WaitGroup
	if len(o.heapAt) > 0 {
		dir := soakResultsDir(o, res.Started)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); r.saveHeapProfiles(runCtx, dir, stderr) }()
	}
	wg.Add(4)
	go func() { defer wg.Done(); r.runChaos(runCtx, r.chaosPlan(), &res.Events, &mu, stderr) }()
	go func() { defer wg.Done(); r.sampleResources(runCtx, deadline, &res.Resources, &mu) }()
	go func() { defer wg.Done(); r.replayer(runCtx, deadline) }()
	go func() { defer wg.Done(); r.progress(runCtx, deadline, stderr) }()
	var cw sync.WaitGroup
	for w := range o.clients {
		cw.Add(1)
		go func() { defer cw.Done(); r.worker(runCtx, w, deadline) }()
	}
	cw.Wait()
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Duration = time.Since(r.start)
	res.Samples, res.Replays = r.samples, r.replays
	res.Revocations = map[int][2]time.Duration{}
	for _, id := range e.ids {
		id.mu.Lock()
		if !id.revoked.IsZero() {
			res.Revocations[id.id] = [2]time.Duration{id.revoking.Sub(r.start), id.revoked.Sub(r.start)}
		}
		id.mu.Unlock()
	}
	for _, n := range e.nodes {
		if err := n.proc.exited(); err != nil {
			res.NodeLogs[n.name] = "EXITED: " + err.Error()
		}
	}
	a := analyseSoak(res, o)
	if err := writeSoakOutputs(res, a, o, stdout); err != nil {
		return a, err
	}
	if len(a.Failures) > 0 {
		for _, n := range e.nodes {
			res.NodeLogs[n.name] = n.proc.log.String()
		}
		return a, fmt.Errorf("soak assertions failed:\n- %s\nnode output:\n%s", strings.Join(a.Failures, "\n- "), nodeLogs(res.NodeLogs))
	}
	return a, nil
}

func nodeLogs(m map[string]string) string {
	var b strings.Builder
	for k, v := range m {
		if len(v) > 3000 {
			v = v[len(v)-3000:]
		}
		fmt.Fprintf(&b, "== %s\n%s\n", k, v)
	}
	return b.String()
}

// progress prints a line every 10 s.
func (r *soakRun) progress(ctx context.Context, deadline time.Time, stderr io.Writer) {
	if r.e.o.quiet {
		return
	}
	last := int64(0)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
		n := r.count.Load()
		r.mu.Lock()
		var fails, resumed int
		for _, s := range r.samples[last:] {
			if !s.OK && !s.Doomed {
				fails++
			}
			if s.Resumed {
				resumed++
			}
		}
		r.mu.Unlock()
		fmt.Fprintf(stderr, "soak: %6.1fs  %d connections (%d in 10 s, %d resumed, %d failed), %s left\n",
			time.Since(r.start).Seconds(), n, n-last, resumed, fails, time.Until(deadline).Round(time.Second))
		last = n
	}
}

// soakVersions names Caddy, Go and Redis.
func soakVersions(e *soakEnv) map[string]string {
	v := map[string]string{"caddy-plugin": commandVersion(e.o.pluginBin, "version")}
	if bin, err := testredis.Binary(); err == nil {
		v["redis"] = firstLine(exec.Command(bin, "--version").Output())
	}
	v["go"] = runtime.Version()
	return v
}

func soakResultsDir(o soakOptions, started time.Time) string {
	if o.results != "" {
		return o.results
	}
	return filepath.Join(moduleDir(), "soak-results", started.UTC().Format("20060102T150405Z"))
}
