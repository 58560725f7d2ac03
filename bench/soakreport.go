package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// phaseStats is what the clients saw in one phase (or in total).
type phaseStats struct {
	Name          string
	From, To      time.Duration
	Connections   int
	Failed        int // connections of clients not (yet) revoked that failed
	ReloadLost    int // such failures that ended while the node reloaded its config
	RevokedTried  int // connections of revoked clients after propagation
	RevokedOK     int // of which were answered 200: must be 0
	Resumable     int // completed connections that had a session to offer
	Resumed       int
	P50, P99      time.Duration
	Early         int // requests run in 0-RTT
	TooEarly      int // 0-RTT POSTs answered 425
	EarlyPost     int // POSTs run in 0-RTT: must be 0
	Rejected      int // 0-RTT attempts the server refused
	firstFailures []string
}

func (p *phaseStats) rate() float64 {
	if p.Resumable == 0 {
		return 0
	}
	return float64(p.Resumed) / float64(p.Resumable)
}

func (p *phaseStats) add(s connSample) {
	p.Connections++
	switch {
	case s.Revoked:
		p.RevokedTried++
		if s.OK {
			p.RevokedOK++
		}
	case s.Grace:
		// between the revocation and its propagation: either outcome
	case !s.OK && s.Reload:
		p.ReloadLost++
	case !s.OK:
		p.Failed++
		if len(p.firstFailures) < 5 {
			p.firstFailures = append(p.firstFailures, fmt.Sprintf("%.1fs node %d %s client %d: %s", s.At.Seconds(), s.Node, protoNames[s.Proto], s.ID, s.Err))
		}
	}
	if s.OK && !s.First {
		p.Resumable++
		if s.Resumed {
			p.Resumed++
		}
	}
	if s.Early {
		p.Early++
	}
	if s.Too {
		p.TooEarly++
	}
	if s.Rejected {
		p.Rejected++
	}
	if s.EarlyPost {
		p.EarlyPost++
	}
}

func (p *phaseStats) latencies(ss []connSample, keep func(connSample) bool) {
	var l []time.Duration
	for _, s := range ss {
		if s.OK && keep(s) {
			l = append(l, s.Took)
		}
	}
	p.P50, p.P99 = percentile(l, 50), percentile(l, 99)
}

// nodeTrend is one node's resource series, summarised.
type nodeTrend struct {
	Node                         string
	RSS                          [3]float64 // MiB: start, middle third, last third medians
	Heap                         [3]float64 // Go heap in use, MiB, the same medians
	FDs                          [3]float64
	Goroutines                   [3]float64
	RSSSlope, FDSlope, GorSlope  float64 // per minute, after warm-up
	Grows                        []string
	Samples                      int
	MaxRSS, MaxFDs, MaxGoroutine float64
}

// soakAnalysis is the soak's findings.
type soakAnalysis struct {
	Total      phaseStats
	Phases     []*phaseStats
	Protocols  []*phaseStats
	Kinds      []*phaseStats // store nodes, stateless node
	Replays    [2]replayStats
	Trends     []nodeTrend
	Rotations  int
	Failures   []string
	Buckets    []bucket
	BucketSize time.Duration
}

type replayStats struct {
	Label        string
	Tickets      int
	Uses         int
	MaxAccepted  int
	Dist         map[int]int // accepted count → tickets
	Errors       int
	FirstErr     string
	AllowedLimit int
}

type bucket struct {
	At       time.Duration
	Conns    int
	Failed   int
	Refused  int // revoked clients refused
	Rate     float64
	P50, P99 time.Duration
}

func analyseSoak(res *soakResult, o soakOptions) *soakAnalysis {
	a := &soakAnalysis{Total: phaseStats{Name: "whole run", To: res.Duration}}
	ss := res.Samples
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].At < ss[j].At })
	// phases
	events := slices.Clone(res.Events)
	sort.SliceStable(events, func(i, j int) bool { return events[i].At < events[j].At })
	a.Phases = []*phaseStats{{Name: "baseline"}}
	for _, ev := range events {
		if ev.Err != "" {
			a.Failures = append(a.Failures, fmt.Sprintf("chaos step %q at %.1fs failed: %s", ev.Kind, ev.At.Seconds(), ev.Err))
		}
		if ev.Phase == "" {
			continue
		}
		last := a.Phases[len(a.Phases)-1]
		last.To = ev.At
		a.Phases = append(a.Phases, &phaseStats{Name: ev.Phase, From: ev.At})
	}
	a.Phases[len(a.Phases)-1].To = res.Duration
	// Revoked clients: a connection that ended before the revocation was
	// requested is an ordinary one; one that started more than a poll
	// interval after the revocation answered must be refused; in between,
	// either outcome is right.
	for i := range ss {
		s := &ss[i]
		s.Revoked, s.Grace = false, false
		w, ok := res.Revocations[s.ID]
		if !s.Doomed || !ok || s.End < w[0] {
			continue
		}
		if s.At > w[1]+propagationBound(o.poll) {
			s.Revoked = true
		} else {
			s.Grace = true
		}
	}
	// Failures on a node while it reloads: stock Caddy loses connections
	// in flight on a config reload too (see the report), so they are
	// counted apart.
	for i := range ss {
		s := &ss[i]
		if s.OK {
			continue
		}
		for _, ev := range events {
			if ev.Node == s.Node && ev.Node >= 0 && strings.HasPrefix(ev.Kind, "reload") &&
				s.At <= ev.Done+200*time.Millisecond && s.End >= ev.At-100*time.Millisecond {
				s.Reload = true
				break
			}
		}
	}
	a.Protocols = []*phaseStats{{Name: protoNames[0]}, {Name: protoNames[1]}, {Name: protoNames[2]}}
	a.Kinds = []*phaseStats{{Name: "store nodes (Redis session store)"}, {Name: "stateless node"}}
	for _, s := range ss {
		a.Total.add(s)
		for _, p := range a.Phases {
			if s.At >= p.From && s.At < p.To {
				p.add(s)
				break
			}
		}
		a.Protocols[s.Proto].add(s)
		k := 0
		if s.Node == 3 {
			k = 1
		}
		a.Kinds[k].add(s)
	}
	a.Total.latencies(ss, func(connSample) bool { return true })
	for _, p := range a.Phases {
		p.latencies(ss, func(s connSample) bool { return s.At >= p.From && s.At < p.To })
	}
	for i, p := range a.Protocols {
		p.latencies(ss, func(s connSample) bool { return s.Proto == i })
	}
	a.Kinds[0].latencies(ss, func(s connSample) bool { return s.Node != 3 })
	a.Kinds[1].latencies(ss, func(s connSample) bool { return s.Node == 3 })

	// assertions on the clients
	t := &a.Total
	if t.Failed > 0 {
		a.Failures = append(a.Failures, fmt.Sprintf("%d connections of clients that were not revoked failed; first: %s", t.Failed, strings.Join(firstFailures(a.Phases), " | ")))
	}
	if t.RevokedOK > 0 {
		a.Failures = append(a.Failures, fmt.Sprintf("%d requests of revoked clients were answered 200 more than a propagation bound (%s: the poll interval, its jitter and one second) after the revocation; %s", t.RevokedOK, propagationBound(o.poll), strings.Join(lateAdmissions(res, ss), " | ")))
	}
	if t.RevokedTried == 0 {
		a.Failures = append(a.Failures, "no revoked client tried again after its revocation: the revocation check did not run")
	}
	if t.EarlyPost > 0 {
		a.Failures = append(a.Failures, fmt.Sprintf("%d POSTs ran in 0-RTT: early_data_guard let them through", t.EarlyPost))
	}
	if a.Phases[0].rate() < 0.5 {
		a.Failures = append(a.Failures, fmt.Sprintf("baseline resumption rate %.1f%%: below 50%%, resumption is not working", 100*a.Phases[0].rate()))
	}
	if a.Protocols[protoH3].Connections == 0 || a.Protocols[protoTLS12].Connections == 0 {
		a.Failures = append(a.Failures, "a protocol had no connections")
	}
	// 0-RTT replays
	a.Replays[0] = replayStats{Label: "store nodes: 0-RTT GET with copies of one ticket on each of the 3 store nodes", Dist: map[int]int{}, AllowedLimit: 1}
	a.Replays[1] = replayStats{Label: "stateless node: 0-RTT GET twice with copies of one ticket (early_data once: stateless tickets carry none)", Dist: map[int]int{}, AllowedLimit: 0}
	for _, r := range res.Replays {
		rs := &a.Replays[1]
		if r.Stateful {
			rs = &a.Replays[0]
		}
		if r.Err != "" {
			rs.Errors++
			if rs.FirstErr == "" {
				rs.FirstErr = fmt.Sprintf("%.1fs: %s", r.At.Seconds(), r.Err)
			}
		}
		if r.Uses == 0 {
			continue
		}
		rs.Tickets++
		rs.Uses += r.Uses
		rs.Dist[r.Accepted]++
		rs.MaxAccepted = max(rs.MaxAccepted, r.Accepted)
	}
	for _, rs := range a.Replays {
		if rs.MaxAccepted > rs.AllowedLimit {
			a.Failures = append(a.Failures, fmt.Sprintf("%s: a ticket's early data was accepted %d times (at most %d allowed)", rs.Label, rs.MaxAccepted, rs.AllowedLimit))
		}
	}
	if a.Replays[0].Tickets == 0 || a.Replays[0].Dist[1] == 0 {
		a.Failures = append(a.Failures, "the replay probe never saw a ticket's 0-RTT accepted on the store nodes: the 0-RTT check tested nothing")
	}
	for name, l := range res.NodeLogs {
		if strings.HasPrefix(l, "EXITED") {
			a.Failures = append(a.Failures, name+" "+l)
		}
	}
	// resources
	byNode := map[string][]resourceSample{}
	var names []string
	for _, r := range res.Resources {
		if _, ok := byNode[r.Node]; !ok {
			names = append(names, r.Node)
		}
		byNode[r.Node] = append(byNode[r.Node], r)
		if r.Node == "node0" {
			a.Rotations = max(a.Rotations, r.Rotations)
		}
	}
	if len(byNode["node0"]) > 0 {
		a.Rotations -= byNode["node0"][0].Rotations
	}
	for _, n := range names {
		tr := trend(n, byNode[n], res.Duration)
		a.Trends = append(a.Trends, tr)
		for _, g := range tr.Grows {
			a.Failures = append(a.Failures, fmt.Sprintf("%s: %s", n, g))
		}
	}
	// timeline
	a.BucketSize = max(time.Second, (res.Duration / 120).Round(time.Second))
	nb := int(res.Duration/a.BucketSize) + 1
	lat := make([][]time.Duration, nb)
	stats := make([]phaseStats, nb)
	for _, s := range ss {
		i := min(int(s.At/a.BucketSize), nb-1)
		stats[i].add(s)
		if s.OK {
			lat[i] = append(lat[i], s.Took)
		}
	}
	for i := range stats {
		a.Buckets = append(a.Buckets, bucket{At: time.Duration(i) * a.BucketSize, Conns: stats[i].Connections, Failed: stats[i].Failed,
			Refused: stats[i].RevokedTried - stats[i].RevokedOK, Rate: stats[i].rate(), P50: percentile(lat[i], 50), P99: percentile(lat[i], 99)})
	}
	return a
}

func firstFailures(ps []*phaseStats) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.firstFailures...)
	}
	if len(out) > 5 {
		out = out[:5]
	}
	return out
}

// trend summarises one node's resources and flags growth: after the first
// fifth of the run (warm-up), the median of the last third may exceed the
// median of the middle third by at most 25% plus a fixed allowance (64 MiB
// RSS, 40 descriptors, 60 goroutines): in-flight connections and reloads
// make these figures swing, a leak makes them climb to the end.
func trend(node string, rs []resourceSample, d time.Duration) nodeTrend {
	tr := nodeTrend{Node: node, Samples: len(rs)}
	var post []resourceSample
	for _, r := range rs {
		if r.At >= d/5 && r.Err == "" {
			post = append(post, r)
		}
		tr.MaxRSS = math.Max(tr.MaxRSS, float64(r.RSS)/(1<<20))
		tr.MaxFDs = math.Max(tr.MaxFDs, float64(r.FDs))
		tr.MaxGoroutine = math.Max(tr.MaxGoroutine, float64(r.Goroutines))
	}
	if len(post) < 3 {
		return tr
	}
	third := len(post) / 3
	parts := [3][]resourceSample{post[:third], post[third : len(post)-third], post[len(post)-third:]}
	for i, p := range parts {
		tr.RSS[i] = medianOf(p, func(r resourceSample) float64 { return float64(r.RSS) / (1 << 20) })
		tr.Heap[i] = medianOf(p, func(r resourceSample) float64 { return float64(r.HeapInuse) / (1 << 20) })
		tr.FDs[i] = medianOf(p, func(r resourceSample) float64 { return float64(r.FDs) })
		tr.Goroutines[i] = medianOf(p, func(r resourceSample) float64 { return float64(r.Goroutines) })
	}
	tr.RSSSlope = slope(post, func(r resourceSample) float64 { return float64(r.RSS) / (1 << 20) })
	tr.FDSlope = slope(post, func(r resourceSample) float64 { return float64(r.FDs) })
	tr.GorSlope = slope(post, func(r resourceSample) float64 { return float64(r.Goroutines) })
	// A leak keeps climbing; a figure that rose to a plateau (caches and
	// the heap filling up) does not: the last third is compared with the
	// middle one.
	check := func(what string, v [3]float64, allowance float64) {
		if v[2] > 1.25*v[1]+allowance {
			tr.Grows = append(tr.Grows, fmt.Sprintf("%s still growing: median %.0f in the middle third, %.0f in the last", what, v[1], v[2]))
		}
	}
	// Go's heap takes minutes to reach its level under this load (quic-go
	// keeps every closed HTTP/3 connection reachable for Caddy's
	// idle_timeout, 5 minutes by default): RSS is judged on runs of five
	// minutes or more only.
	if d >= rssCheckFrom {
		check("RSS (MiB)", tr.RSS, 64)
	}
	check("open file descriptors", tr.FDs, 40)
	check("goroutines", tr.Goroutines, 60)
	return tr
}

// lateAdmissions describes the first few requests of revoked clients
// answered 200 after their revocation had propagated: which client, node
// and protocol, and how long after the revocation request was answered.
func lateAdmissions(res *soakResult, ss []connSample) []string {
	var out []string
	for _, s := range ss {
		if !s.Revoked || !s.OK {
			continue
		}
		node := "stateless"
		if s.Node < 3 {
			node = fmt.Sprintf("node%d", s.Node)
		}
		how := "full handshake"
		if s.Resumed {
			how = "resumed"
		}
		out = append(out, fmt.Sprintf("client %d on %s (%s, %s) started %.2f s after its revocation was answered", s.ID, node, protoNames[s.Proto], how, (s.At-res.Revocations[s.ID][1]).Seconds()))
		if len(out) == 5 {
			break
		}
	}
	return out
}

// idleTimeoutText names the nodes' idle_timeout for the report.
func idleTimeoutText(o soakOptions) string {
	if o.idleTimeout == "" {
		return "Caddy's default of 5 minutes"
	}
	return "`-idle-timeout " + o.idleTimeout + "`"
}

// rssCheckFrom is the shortest run whose RSS trend is checked.
const rssCheckFrom = 5 * time.Minute

func medianOf(rs []resourceSample, f func(resourceSample) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}

// slope is the least-squares slope of f over time, per minute.
func slope(rs []resourceSample, f func(resourceSample) float64) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(rs))
	for _, r := range rs {
		x, y := r.At.Minutes(), f(r)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// writeSoakOutputs writes the raw samples, the chart and the report.
func writeSoakOutputs(res *soakResult, a *soakAnalysis, o soakOptions, stdout io.Writer) error {
	dir := soakResultsDir(o, res.Started)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.json"), js, 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "connections.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"at_ms", "handshake_us", "worker", "node", "proto", "client", "doomed", "revoked", "grace", "first", "ok", "resumed", "early", "too_early", "early_post", "rejected_0rtt", "end_ms", "lost_to_reload", "error"})
	b := func(v bool) string { return strconv.FormatBool(v) }
	for _, s := range res.Samples {
		_ = w.Write([]string{strconv.FormatInt(s.At.Milliseconds(), 10), strconv.FormatInt(s.Took.Microseconds(), 10), strconv.Itoa(s.Worker), strconv.Itoa(s.Node),
			protoNames[s.Proto], strconv.Itoa(s.ID), b(s.Doomed), b(s.Revoked), b(s.Grace), b(s.First), b(s.OK), b(s.Resumed), b(s.Early), b(s.Too), b(s.EarlyPost), b(s.Rejected), strconv.FormatInt(s.End.Milliseconds(), 10), b(s.Reload), s.Err})
	}
	w.Flush()
	if err := f.Close(); err != nil {
		return err
	}
	chart := soakChart(res, a)
	if err := os.WriteFile(filepath.Join(dir, "timeline.svg"), []byte(chart), 0o644); err != nil {
		return err
	}
	md := soakMarkdown(res, a, o, "")
	if o.out != "" {
		rel, err := filepath.Rel(filepath.Dir(o.out), o.chart)
		if err != nil {
			rel = o.chart
		}
		if err := os.MkdirAll(filepath.Dir(o.chart), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.chart, []byte(chart), 0o644); err != nil {
			return err
		}
		md = soakMarkdown(res, a, o, filepath.ToSlash(rel))
		if err := writeSection(o.out, md); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "soak: %d connections, %d failed, %d revoked admitted, resumption %.2f%%, p50 %s p99 %s; %d assertion failures\nraw samples: %s\n",
		a.Total.Connections, a.Total.Failed, a.Total.RevokedOK, 100*a.Total.rate(), a.Total.P50.Round(time.Microsecond), a.Total.P99.Round(time.Microsecond), len(a.Failures), dir)
	return nil
}

const (
	sectionBegin = "<!-- soak:begin (written by make soak; edit outside these markers) -->"
	sectionEnd   = "<!-- soak:end -->"
)

// writeSection replaces the soak's section of path (between the markers),
// keeping what the rest of the file says; a file without markers gets the
// section at its end.
func writeSection(path, section string) error {
	return writeMarked(path, sectionBegin, sectionEnd, section)
}

// writeMarked replaces the part of path between begin and end (the
// markers included) with section, or appends it.
func writeMarked(path, sectionBegin, sectionEnd, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	block := sectionBegin + "\n" + section + sectionEnd + "\n"
	i, j := strings.Index(s, sectionBegin), strings.Index(s, sectionEnd)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + strings.TrimPrefix(s[j+len(sectionEnd):], "\n")
	case s == "":
		s = "# Reliability: soak, chaos, fuzzing and scale limits\n\n" + block
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + block
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func pct(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

// soakMarkdown is the report's soak section.
func soakMarkdown(res *soakResult, a *soakAnalysis, o soakOptions, chart string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("## Soak and chaos run\n\n")
	p("```\n%s\n```\n\n", res.Command)
	verdict := "**Passed**: every assertion held."
	if len(a.Failures) > 0 {
		verdict = "**Failed**:\n\n- " + strings.Join(a.Failures, "\n- ")
	}
	p("%s\n\n", verdict)
	p("Four Caddy processes with the plugin share one file storage (the ticket-key ring): three with the Redis session store (`session_store redis`, `early_data` default `once`) and one without (stateless tickets). Every node requires a client certificate from the test root, serves HTTP/1.1, HTTP/2 and HTTP/3, and runs `early_data_guard` before a response that says whether the request ran in 0-RTT. ")
	p("%d clients run for %s: clients 0–2 of every 8 speak TLS 1.3, 3–4 TLS 1.2, 5–7 HTTP/3 (0-RTT GETs, and POSTs written before the handshake completes, which the guard answers 425 and the client sends again after it); %d of them talk to the stateless node, the others round robin over the store nodes, so nearly every resumption is of a ticket another node issued. Each connection is a new connection, one request, close; clients pause %s (±50%%) between connections. ", o.clients, res.Duration.Round(time.Second), o.stateless, o.think)
	p("Every fourth connection of a client uses one of %d further client certificates, all revoked during the run; their clients keep trying.\n\n", o.revoked)
	p("Chaos: scheduled rotations every %s (`poll_interval %s`, `max_clock_skew %s`: %d rotations counted by node0), a config reload (`POST /load`, forced) of one node every %s in turn, and the faults below, each starting a phase.\n\n", o.rotation, o.poll, o.skew, a.Rotations, o.reload)
	p("| at | event |\n|---:|---|\n")
	for _, ev := range sortedEvents(res.Events) {
		if ev.Phase == "" {
			continue
		}
		p("| %.1f s | %s%s |\n", ev.At.Seconds(), ev.Kind, errSuffix(ev.Err))
	}
	if chart != "" {
		p("\n![Timeline: resumption rate, failures and handshake latency with the fault events](%s)\n", chart)
	}
	p("\n### Per phase\n\n")
	p("*Failed*: connections of clients not revoked (or not yet: a revocation counts from the poll interval plus its 10%% jitter plus one second after its request returned) that did not end in a 200; must be 0. *Revoked admitted*: requests of revoked clients answered 200 after that; must be 0. *Resumption*: completed connections that resumed, of those that had a session to offer. Handshake times are the client's, under load on a shared 2-core machine.\n\n")
	p("| phase | from | to | connections | failed | lost to a reload | revoked tried | revoked admitted | resumption | p50 ms | p99 ms | 0-RTT requests | 425 | POST in 0-RTT |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	row := func(s *phaseStats, from, to string) {
		p("| %s | %s | %s | %d | %d | %d | %d | %d | %s | %s | %s | %d | %d | %d |\n", s.Name, from, to, s.Connections, s.Failed, s.ReloadLost, s.RevokedTried, s.RevokedOK, pct(s.rate()), ms(s.P50), ms(s.P99), s.Early, s.TooEarly, s.EarlyPost)
	}
	for _, ph := range a.Phases {
		row(ph, fmt.Sprintf("%.0f s", ph.From.Seconds()), fmt.Sprintf("%.0f s", ph.To.Seconds()))
	}
	t := a.Total
	t.Name = "**total**"
	row(&t, "0 s", fmt.Sprintf("%.0f s", res.Duration.Seconds()))
	p("\n### By protocol and node kind\n\n| clients | connections | failed | lost to a reload | resumption | p50 ms | p99 ms | 0-RTT requests | 0-RTT rejected | 425 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range append(slices.Clone(a.Protocols), a.Kinds...) {
		p("| %s | %d | %d | %d | %s | %s | %s | %d | %d | %d |\n", s.Name, s.Connections, s.Failed, s.ReloadLost, pct(s.rate()), ms(s.P50), ms(s.P99), s.Early, s.Rejected, s.TooEarly)
	}
	p("\n### 0-RTT: how often one ticket's early data is accepted\n\n")
	p("Every 2 s a probe gets a fresh HTTP/3 ticket and sends a 0-RTT GET with a copy of it to each node of a kind; a use counts as accepted when the client used 0-RTT and the server says the request ran in early data.\n\n")
	p("| probe | tickets | uses | accepted 0× | accepted 1× | accepted 2+× | most per ticket | allowed | probe errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range a.Replays {
		more := 0
		for k, v := range r.Dist {
			if k >= 2 {
				more += v
			}
		}
		p("| %s | %d | %d | %d | %d | %d | %d | %d | %d |\n", r.Label, r.Tickets, r.Uses, r.Dist[0], r.Dist[1], more, r.MaxAccepted, r.AllowedLimit, r.Errors)
	}
	for _, r := range a.Replays {
		if r.FirstErr != "" {
			p("\nFirst probe error (%s): `%s`\n", r.Label, r.FirstErr)
		}
	}
	p("\n### Resources over time\n\n")
	p("Sampled every %s per node: RSS (`/proc/PID/status`), Go heap in use (`go_memstats_heap_inuse_bytes`: live objects and garbage not yet collected), open descriptors (`/proc/PID/fd`), goroutines (`go_goroutines`; both on the admin metrics). After the first fifth of the run (warm-up), medians of the first, middle and last third; *growth* fails when the last third's median exceeds the middle third's by more than 25%% plus 64 MiB, 40 descriptors or 60 goroutines (RSS only in runs of %s or more: the heap takes minutes to reach its level, since quic-go keeps each closed HTTP/3 connection reachable for Caddy's `idle_timeout`, %s here). Slopes are least-squares, per minute.\n\n", o.sample, rssCheckFrom, idleTimeoutText(o))
	p("| node | samples | RSS MiB (first / mid / last) | slope MiB/min | heap in use MiB (first / mid / last) | fds | slope/min | goroutines | slope/min | max RSS / fds / goroutines | growth |\n|---|---:|---|---:|---|---|---:|---|---:|---|---|\n")
	for _, tr := range a.Trends {
		g := "none"
		if len(tr.Grows) > 0 {
			g = strings.Join(tr.Grows, "; ")
		}
		p("| %s | %d | %.0f / %.0f / %.0f | %+.2f | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %+.2f | %.0f / %.0f / %.0f | %+.2f | %.0f / %.0f / %.0f | %s |\n", tr.Node, tr.Samples,
			tr.RSS[0], tr.RSS[1], tr.RSS[2], tr.RSSSlope, tr.Heap[0], tr.Heap[1], tr.Heap[2], tr.FDs[0], tr.FDs[1], tr.FDs[2], tr.FDSlope, tr.Goroutines[0], tr.Goroutines[1], tr.Goroutines[2], tr.GorSlope,
			tr.MaxRSS, tr.MaxFDs, tr.MaxGoroutine, g)
	}
	p("\n### Machine and versions\n\n")
	m := res.Machine
	p("- Machine: %s, %d CPUs, %d GiB memory; %s, kernel %s (shared with other work during the run)\n", m.CPUModel, m.CPUs, m.MemoryGB, m.OS, m.Kernel)
	var keys []string
	for k := range res.Versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p("- %s: %s\n", k, res.Versions[k])
	}
	p("- Run: %s, %s\n", res.Started.UTC().Format("2006-01-02 15:04:05 MST"), res.Duration.Round(time.Second))
	heap := ""
	if len(o.heapAt) > 0 {
		var at []string
		for _, d := range o.heapAt {
			at = append(at, d.String())
		}
		heap = "; heap-<node>-<at>.pb.gz: every node's heap profile at " + strings.Join(at, ", ") + ", for `go tool pprof`"
	}
	p("- Raw samples: `bench/soak-results/<time>/` (connections.csv: one row per connection; soak.json: events, resource samples, replays%s), not committed.\n\n", heap)
	return b.String()
}

func sortedEvents(evs []soakEvent) []soakEvent {
	evs = slices.Clone(evs)
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].At < evs[j].At })
	return evs
}

// soakChart draws the timeline: resumption rate, failures and latency per
// time bucket in three panels, with the fault events as vertical lines,
// reloads and detected rotations as ticks.
func soakChart(res *soakResult, a *soakAnalysis) string {
	const width, left, right = 1100, 70, 30
	const panelH, gap, top = 150, 40, 70
	height := top + 3*panelH + 2*gap + 60
	plotW := float64(width - left - right)
	d := res.Duration.Seconds()
	x := func(t time.Duration) float64 { return float64(left) + plotW*t.Seconds()/d }
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	p(`<rect width="%d" height="%d" fill="#fff"/>`+"\n", width, height)
	p(`<text x="%d" y="20" font-size="15" font-weight="bold">Soak: 4 nodes, %d clients, %s; bucket %s</text>`+"\n", left, atoiDefault(res.Options["clients"], 0), res.Duration.Round(time.Second), a.BucketSize)
	p(`<text x="%d" y="38" fill="#555">red dashed: faults (see the table); grey ticks at the top: config reloads; blue ticks: key rotations seen by node0</text>`+"\n", left)
	panels := []struct {
		title string
		max   float64
		unit  string
		lines []func(bk bucket) float64
		cols  []string
		names []string
	}{
		{"resumption rate (%)", 100, "%", []func(bucket) float64{func(bk bucket) float64 { return 100 * bk.Rate }}, []string{"#1f77b4"}, []string{"resumed"}},
		{"connections per bucket: failed (must be 0), revoked refused", 0, "", []func(bucket) float64{
			func(bk bucket) float64 { return float64(bk.Failed) }, func(bk bucket) float64 { return float64(bk.Refused) }}, []string{"#d62728", "#ff9f40"}, []string{"failed", "revoked refused"}},
		{"handshake latency (ms)", 0, "ms", []func(bucket) float64{
			func(bk bucket) float64 { return float64(bk.P50) / 1e6 }, func(bk bucket) float64 { return float64(bk.P99) / 1e6 }}, []string{"#2ca02c", "#9467bd"}, []string{"p50", "p99"}},
	}
	for pi, pn := range panels {
		y0 := float64(top + pi*(panelH+gap))
		peak := pn.max
		if peak == 0 {
			for _, bk := range a.Buckets {
				for _, f := range pn.lines {
					peak = math.Max(peak, f(bk))
				}
			}
			peak = math.Max(1, niceStep(peak/4)*4)
		}
		y := func(v float64) float64 { return y0 + panelH*(1-v/peak) }
		p(`<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-6, html.EscapeString(pn.title))
		lx := float64(left + 420)
		for li, n := range pn.names {
			p(`<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", lx, y0-15, pn.cols[li], lx+14, y0-6, n)
			lx += 120
		}
		for i := 0; i <= 4; i++ {
			v := peak * float64(i) / 4
			p(`<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%.4g</text>`+"\n", left, width-right, y(v), y(v), left-5, y(v)+4, v)
		}
		for li, f := range pn.lines {
			var pts []string
			for _, bk := range a.Buckets {
				if bk.Conns == 0 {
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(bk.At+a.BucketSize/2), y(f(bk))))
			}
			p(`<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", pn.cols[li], strings.Join(pts, " "))
		}
		p(`<rect x="%d" y="%.0f" width="%.0f" height="%d" fill="none" stroke="#999"/>`+"\n", left, y0, plotW, panelH)
	}
	bottom := float64(top + 3*panelH + 2*gap)
	for _, ev := range sortedEvents(res.Events) {
		if ev.Phase == "" {
			p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#999"><title>%s at %.1fs</title></line>`+"\n", x(ev.At), x(ev.At), top-12, top-4, html.EscapeString(ev.Kind), ev.At.Seconds())
			continue
		}
		p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%.0f" stroke="#d62728" stroke-dasharray="4,3"><title>%s at %.1fs</title></line>`+"\n", x(ev.At), x(ev.At), top, bottom, html.EscapeString(ev.Kind), ev.At.Seconds())
		p(`<text transform="translate(%.1f,%.0f) rotate(40)" fill="#d62728">%s</text>`+"\n", x(ev.At)+2, bottom+8, html.EscapeString(ev.Phase))
	}
	last := -1
	for _, r := range res.Resources {
		if r.Node != "node0" || r.Err != "" {
			continue
		}
		if last >= 0 && r.Rotations > last {
			p(`<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#1f77b4" stroke-width="2"><title>rotation seen by %.0fs</title></line>`+"\n", x(r.At), x(r.At), top-22, top-14, r.At.Seconds())
		}
		last = r.Rotations
	}
	for s := 0.0; s <= d; s += niceStep(d / 10) {
		p(`<text x="%.1f" y="%.0f" text-anchor="middle" fill="#555">%.0fs</text>`+"\n", x(time.Duration(s*float64(time.Second))), bottom+50, s)
	}
	b.WriteString("</svg>\n")
	return b.String()
}
