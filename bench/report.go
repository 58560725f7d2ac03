package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// report turns results into BENCHMARKS.md, the chart and a summary.
type report struct {
	res *results
	// cells in run order, and each server's result per cell.
	cells  []cell
	byCell map[cell]map[string]*cellResult
}

// pluginID is the server the report compares the others against.
const pluginID = "plugin"

// clientBound is the server busy share below which the load generator, not
// the server, set the pace.
const clientBound = 0.9

// fleetTarget is the resumption rate the plugin's fleet must reach.
const fleetTarget = 0.999

func newReport(res *results) *report {
	r := &report{res: res, byCell: map[cell]map[string]*cellResult{}}
	for _, cr := range res.Matrix {
		c := cr.Cell
		c.chain = 0 // cells are identified by their exported fields
		if r.byCell[c] == nil {
			r.byCell[c] = map[string]*cellResult{}
			r.cells = append(r.cells, c)
		}
		r.byCell[c][cr.Server] = cr
	}
	return r
}

// agg is a server's medians over the rounds of one cell.
type agg struct {
	hs, resumed, cpu, busy, clientBusy, p50, p99 float64
	errors                                       int
	ok                                           bool
	group                                        string // key exchange the server chose
}

func (r *report) agg(c cell, server string) agg {
	cr := r.byCell[c][server]
	if cr == nil || len(cr.Samples) == 0 {
		return agg{}
	}
	col := func(f func(sample) float64) float64 {
		xs := make([]float64, len(cr.Samples))
		for i, s := range cr.Samples {
			xs[i] = f(s)
		}
		return median(xs)
	}
	a := agg{ok: true, group: cr.Samples[0].Group}
	a.hs = col(func(s sample) float64 { return s.HandshakesPerSec })
	a.resumed = col(func(s sample) float64 { return s.ResumedFraction })
	a.cpu = col(func(s sample) float64 { return s.CPUPerHandshake })
	a.busy = col(func(s sample) float64 { return s.ServerBusy })
	a.clientBusy = col(func(s sample) float64 { return s.ClientBusy })
	a.p50 = col(func(s sample) float64 { return s.P50 })
	a.p99 = col(func(s sample) float64 { return s.P99 })
	for _, s := range cr.Samples {
		a.errors += s.Errors
	}
	return a
}

// ratio compares the plugin with server in cell c round by round, by f.
func (r *report) ratio(c cell, server string, f func(sample) float64) ratioStats {
	p, o := r.byCell[c][pluginID], r.byCell[c][server]
	if p == nil || o == nil {
		return ratioStats{}
	}
	var a, b []float64
	for i := range min(len(p.Samples), len(o.Samples)) {
		a = append(a, f(p.Samples[i]))
		b = append(b, f(o.Samples[i]))
	}
	return pairRatios(a, b)
}

func (r *report) label(id string) string {
	for _, s := range r.res.Servers {
		if s.ID == id {
			return s.Label
		}
	}
	return id
}

// targetCheck is one target's outcome.
type targetCheck struct {
	text string
	met  bool
	why  string
}

// targets evaluates the targets on this run.
func (r *report) targets() []targetCheck {
	var out []targetCheck
	for _, rival := range []string{"nginx", "haproxy"} {
		for _, c := range r.cells {
			// The targets compare equal work: X25519 everywhere (OpenSSL
			// 3.0 cannot do the hybrid the client offers by default).
			if !c.Resumed || c.KX != "" || r.byCell[c][pluginID] == nil || r.byCell[c][rival] == nil {
				continue
			}
			hs := r.ratio(c, rival, func(s sample) float64 { return s.HandshakesPerSec })
			t := targetCheck{
				text: fmt.Sprintf("resumed mTLS handshakes/s, %s TLS %s: plugin ≥ %s (median ratio %.2f× over %d rounds)", c.Chain, c.Version, r.label(rival), hs.Median, hs.Pairs),
				met:  hs.Median >= 1,
			}
			if !t.met {
				t.why = r.explainMiss(c, rival)
			}
			out = append(out, t)
		}
	}
	for _, f := range r.res.Fleet {
		if f.Setup.ID != pluginID {
			continue
		}
		t := targetCheck{
			text: fmt.Sprintf("fleet resumption rate through rotations ≥ 99.9%%: %.3f%% (%d of %d)", 100*f.rate(), f.Resumed, f.Connections),
			met:  f.rate() >= fleetTarget,
		}
		if !t.met {
			t.why = fmt.Sprintf("%d connections did not resume (%d errors)", f.Connections-f.Resumed, f.Errors)
		}
		out = append(out, t)
	}
	return out
}

// explainMiss says what the figures show when the plugin is slower than a
// rival: whether the server or the client set the pace, and how the CPU
// cost per handshake compares.
func (r *report) explainMiss(c cell, rival string) string {
	p, o := r.agg(c, pluginID), r.agg(c, rival)
	cpu := r.ratio(c, rival, func(s sample) float64 { return s.CPUPerHandshake })
	var why []string
	why = append(why, fmt.Sprintf("the plugin spent %.0f µs of CPU per handshake against %.0f µs (%.2f×)", p.cpu, o.cpu, cpu.Median))
	if p.busy < clientBound {
		why = append(why, fmt.Sprintf("the plugin's core was only %.0f%% busy, so the load generator, not the server, set the pace", 100*p.busy))
	}
	if p.resumed < 0.99 {
		why = append(why, fmt.Sprintf("only %.1f%% of its connections resumed", 100*p.resumed))
	}
	return strings.Join(why, "; ")
}

// summary is the short text printed at the end of a run.
func (r *report) summary() string {
	var b strings.Builder
	b.WriteString("Handshakes per second (median of rounds; resumed share in parentheses):\n")
	for _, c := range r.cells {
		fmt.Fprintf(&b, "  %-32s", c)
		for _, s := range r.res.Servers {
			a := r.agg(c, s.ID)
			if !a.ok {
				continue
			}
			fmt.Fprintf(&b, "  %s %.0f", s.ID, a.hs)
			if c.Resumed {
				fmt.Fprintf(&b, " (%.0f%%)", 100*a.resumed)
			}
		}
		b.WriteString("\n")
	}
	for _, f := range r.res.Fleet {
		fmt.Fprintf(&b, "fleet %-20s %.3f%% resumed (%d of %d)\n", f.Setup.ID, 100*f.rate(), f.Resumed, f.Connections)
	}
	for _, t := range r.targets() {
		mark := "met"
		if !t.met {
			mark = "MISSED (" + t.why + ")"
		}
		fmt.Fprintf(&b, "target: %s: %s\n", t.text, mark)
	}
	return b.String()
}

// markdown renders BENCHMARKS.md; chart is the chart's path relative to it.
func (r *report) markdown(chart string) string {
	res := r.res
	var b strings.Builder
	b.WriteString("# Benchmarks: caddy-tlsresume against stock Caddy, nginx and HAProxy\n\n")
	b.WriteString("Generated by the comparative benchmark in [`bench/`](bench/README.md); every figure below comes from one run on one machine. ")
	b.WriteString("Re-run it with the command below; the raw samples of every run are written to `bench/results/`.\n\n")
	fmt.Fprintf(&b, "```\n%s\n```\n\n", res.Command)

	b.WriteString("## Targets\n\n")
	for _, t := range r.targets() {
		if t.met {
			fmt.Fprintf(&b, "- **Met**: %s.\n", t.text)
		} else {
			fmt.Fprintf(&b, "- **Missed**: %s. Why: %s.\n", t.text, t.why)
		}
	}
	b.WriteString("\n")

	fmt.Fprintf(&b, "![Handshakes per second by server and mode](%s)\n\n", chart)

	b.WriteString("## What was measured\n\n")
	fmt.Fprintf(&b, "Every server got the same certificates (root → intermediate → leaf, for ECDSA P-256 and for RSA-2048; and a one-level ECDSA P-256 hierarchy whose root signs the leaves directly), required and verified a client certificate from the same root, and answered `GET /` with a 2-byte body. ")
	b.WriteString("Each connection is a new TCP connection, a TLS handshake (timed), one HTTP/1.1 request with `Connection: close`, and the whole response. ")
	b.WriteString("*Full*: clients keep no sessions. *Resumed*: each client offers the session (ticket) of its previous connection. In the rows marked *X25519* the client offers X25519 first (and P-256, which TLS 1.2 needs to name the ECDSA certificate's curve), so every server does the same X25519 key exchange. In the rows marked *client default* the client keeps Go 1.26's default list, which offers the X25519MLKEM768 post-quantum hybrid first, as current browsers do; *Chosen* is the group the server picked (Go's name for it; *none* for a resumed TLS 1.2 handshake, which has no key exchange). A TLS 1.3 resumption (psk_dhe_ke) still does a key exchange, so a server that supports the hybrid pays for it on resumed handshakes too.\n\n")
	fmt.Fprintf(&b, "- **Handshakes/s**: connections completed per second by %d concurrent clients over %s, median of %d rounds.\n", res.Settings.Concurrency, seconds(res.Settings.DurationS), res.Settings.Rounds)
	b.WriteString("- **CPU µs/handshake**: the server's own CPU time (user + system from `/proc/<pid>/stat`, summed over its processes and threads) during that run, divided by the connections. It does not depend on who set the pace.\n")
	b.WriteString("- **Busy**: that CPU time over the run's wall time; 100% is the server's one core fully used. Below about 90% the load generator, not the server, was the limit.\n")
	b.WriteString("- **Client**: the load generator's own CPU time over the wall time (100% = one core).\n")
	fmt.Fprintf(&b, "- **p50/p99**: handshake latency of a single client connecting alone for %s (no queueing), in µs.\n", seconds(res.Settings.LatencyDurationS))
	b.WriteString("- **Ratios** are taken pair by pair: in every round the servers run back to back in each cell (order reversed every other round), and the plugin's figure is divided by the other server's of the same round. The median and range over rounds are shown.\n\n")
	if res.Settings.ServerCPUs != "" {
		fmt.Fprintf(&b, "Servers were pinned to CPU %s (`taskset`), one core each, one at a time under load: Caddy's Go runtime sees one CPU, nginx runs one worker, HAProxy one thread. The load generator ran on CPU %s.\n\n", res.Settings.ServerCPUs, joinInts(res.Settings.ClientCPUs))
	} else {
		b.WriteString("Servers and the load generator were not pinned to CPUs; they shared the machine.\n\n")
	}

	b.WriteString("### Reading the results\n\n")
	b.WriteString("- nginx and HAProxy are Debian's packages and use the system OpenSSL (version below). OpenSSL 3.0 is widely reported to spend more CPU per handshake than 1.1.1 and later 3.x releases, so builds against another TLS library may do better than here; Caddy uses Go's crypto/tls.\n")
	b.WriteString("- On full handshakes the plugin also seals and sends a session ticket, which stock Caddy skips because it has tickets off for mTLS sites; that is the price of every later resumption.\n")
	b.WriteString("- Resumed rows for stock Caddy are full handshakes: it cannot resume a session of a client that authenticated with a certificate.\n")
	b.WriteString("- nginx and HAProxy here link the system OpenSSL 3.0, which has no X25519MLKEM768: offered the hybrid first, they choose X25519 (see *Chosen*), while Go (both Caddys) chooses the hybrid. The client-default rows therefore compare unequal work; the X25519 rows compare equal work.\n")
	b.WriteString("- The one-level rows match a deployment whose client and server leaves are signed by the root directly: less to send and to verify on full handshakes, and a smaller session state to seal into each ticket.\n\n")

	b.WriteString("### Resumption settings\n\n")
	b.WriteString("- **Caddy + tls_resume**: `tls_resume { kek … }` with its defaults: stateless tickets sealed by the ring in file storage, bound to the site's client-auth policy.\n")
	b.WriteString("- **Caddy (stock)**: the same Caddyfile without `tls_resume`. Caddy turns session tickets off for a site that requires client certificates, so its *resumed* rows are full handshakes (0% resumed).\n")
	b.WriteString("- **nginx**: one worker, `ssl_session_cache shared:TLS:20m`, `ssl_session_tickets on` with an `ssl_session_ticket_key` file, `ssl_verify_client on`.\n")
	b.WriteString("- **HAProxy**: `nbthread 1`, `tune.ssl.cachesize 100000`, `tls-ticket-keys` file, `verify required`, answering with `http-request return`.\n")
	b.WriteString("- **Caddy (stock), no client auth** (the floor): the same sites without `client_auth`; stock Caddy then keeps session tickets on (its standard STEK) and Go resumes with its own tickets. Measured in resumed cells only. A resumed mTLS handshake does everything this one does plus the client-certificate checks, so it cannot be cheaper.\n\n")
	b.WriteString(r.floorSection())

	for _, chainName := range r.chainNames() {
		fmt.Fprintf(&b, "## %s\n\n", chainName)
		b.WriteString("| Server | TLS | Mode | Client offers | Chosen | Handshakes/s | Resumed | CPU µs/handshake | Busy | Client | p50 µs | p99 µs |\n")
		b.WriteString("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, c := range r.cells {
			if c.Chain != chainName {
				continue
			}
			for _, s := range res.Servers {
				a := r.agg(c, s.ID)
				if !a.ok {
					continue
				}
				errs := ""
				if a.errors > 0 {
					errs = fmt.Sprintf(" (%d errors)", a.errors)
				}
				mark := ""
				if a.busy < clientBound {
					mark = " †"
				}
				group := a.group
				if group == "" {
					group = "none"
				}
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %.0f%s%s | %.1f%% | %.0f | %.0f%% | %.0f%% | %.0f | %.0f |\n",
					s.Label, c.Version, c.mode(), c.kxLabel(), group, a.hs, mark, errs, 100*a.resumed, a.cpu, 100*a.busy, 100*a.clientBusy, a.p50, a.p99)
			}
		}
		b.WriteString("\n")
	}

	b.WriteString("† The server's core was less than 90% busy: the load generator set the pace (see *Client*), so compare CPU µs/handshake rather than handshakes/s in that row.\n\n")

	b.WriteString("## Pairwise ratios: the plugin against each server\n\n")
	b.WriteString("Handshakes/s ratio above 1 and CPU ratio below 1 favour the plugin.\n\n")
	b.WriteString("| Against | Cell | Handshakes/s ratio (range) | CPU/handshake ratio (range) |\n|---|---|---:|---:|\n")
	for _, s := range res.Servers {
		if s.ID == pluginID {
			continue
		}
		for _, c := range r.cells {
			hs := r.ratio(c, s.ID, func(x sample) float64 { return x.HandshakesPerSec })
			cpu := r.ratio(c, s.ID, func(x sample) float64 { return x.CPUPerHandshake })
			if hs.Pairs == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %.2f× (%.2f–%.2f) | %.2f× (%.2f–%.2f) |\n",
				s.Label, c, hs.Median, hs.Min, hs.Max, cpu.Median, cpu.Min, cpu.Max)
		}
	}
	b.WriteString("\n")

	if len(res.Fleet) > 0 {
		b.WriteString("## Fleet: resumption across nodes and key rotations\n\n")
		f0 := res.Fleet[0]
		fmt.Fprintf(&b, "%d Caddy processes share one storage directory, as behind a load balancer. %d clients, each with its own session cache, connect round robin over the nodes for %s (TLS 1.3), so nearly every connection offers a ticket another node issued; ticket keys rotate every %s. The rate counts every connection after each client's first.\n\n",
			f0.Nodes, f0.Concurrency, seconds(f0.Duration), seconds(f0.Rotation))
		b.WriteString("| Fleet | Client auth | Connections | Resumed | Rate | Rotations | Misses per rotation |\n|---|---|---:|---:|---:|---|---:|\n")
		for _, f := range res.Fleet {
			auth := "none"
			if f.Setup.MTLS {
				auth = "required"
			}
			rotations := f.Rotations
			rot := fmt.Sprintf("%d counted on every node", f.Rotations)
			if f.Rotations < 0 {
				rotations = int(f.Duration / f.Rotation)
				rot = fmt.Sprintf("%d scheduled (stock Caddy does not count them)", rotations)
			}
			errs := ""
			if f.Errors > 0 {
				errs = fmt.Sprintf(" (%d errors)", f.Errors)
			}
			fmt.Fprintf(&b, "| %s | %s | %d%s | %d | %.3f%% | %s | %s |\n", f.Setup.Label, auth, f.Connections, errs, f.Resumed, 100*f.rate(), rot, missesPerRotation(f, rotations))
		}
		b.WriteString("\nStock Caddy is measured without client authentication because it cannot resume mTLS sessions at all. With its standard key source every node has its own ticket keys, so a ticket only opens on the node that issued it. The distributed key source shares keys through storage, but the first node to reach a rotation seals with the new key at once, while the others load it only when their own timer fires and they get the storage lock; tickets sealed in that gap do not open on them. The last column turns the misses into seconds of the run's connection rate: how long, per rotation, the fleet failed to resume. With Caddy's default 12-hour interval that gap comes twice a day instead of every few seconds, but a ticket sealed in it still fails. The plugin publishes every key ahead of its use (see [docs/tls_resume.md](docs/tls_resume.md)), so no node seals with a key the others cannot open.\n\n")
	}

	b.WriteString("## Machine and versions\n\n")
	m := res.Machine
	fmt.Fprintf(&b, "- Machine: %s, %d CPUs, %d GiB memory; %s, kernel %s\n", m.CPUModel, m.CPUs, m.MemoryGB, m.OS, m.Kernel)
	keys := make([]string, 0, len(res.Versions))
	for k := range res.Versions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %s\n", k, res.Versions[k])
	}
	fmt.Fprintf(&b, "- Run: %s to %s (UTC)\n", res.Started.UTC().Format("2006-01-02 15:04:05"), res.Finished.UTC().Format("15:04:05"))
	return b.String()
}

// floorSection reports the plugin's resumed mTLS throughput as a fraction
// of the floor's, cell by cell, from the same rounds.
func (r *report) floorSection() string {
	var b strings.Builder
	for _, c := range r.cells {
		hs := r.ratio(c, "floor", func(x sample) float64 { return x.HandshakesPerSec })
		cpu := r.ratio(c, "floor", func(x sample) float64 { return x.CPUPerHandshake })
		if hs.Pairs == 0 {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("### The floor: resumed mTLS against resumption without client authentication\n\n")
			b.WriteString("The plugin's resumed mTLS handshakes per second as a fraction of stock Caddy resuming without client authentication, and its CPU per handshake as a multiple, round by round (median and range).\n\n")
			b.WriteString("| Cell | Plugin / floor, handshakes/s | Plugin / floor, CPU per handshake |\n|---|---:|---:|\n")
		}
		fmt.Fprintf(&b, "| %s | %.2f (%.2f–%.2f) | %.2f× (%.2f–%.2f) |\n", c, hs.Median, hs.Min, hs.Max, cpu.Median, cpu.Min, cpu.Max)
	}
	if b.Len() > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

func (r *report) chainNames() []string {
	var names []string
	for _, c := range r.cells {
		if !slices.Contains(names, c.Chain) {
			names = append(names, c.Chain)
		}
	}
	return names
}

// missesPerRotation is the connections that did not resume per rotation,
// and how many seconds of the run's connection rate that is.
func missesPerRotation(f fleetResult, rotations int) string {
	misses := f.Connections - f.Resumed
	if misses == 0 {
		return "0"
	}
	if rotations <= 0 || f.Duration <= 0 {
		return fmt.Sprint(misses)
	}
	per := float64(misses) / float64(rotations)
	rate := float64(f.Connections) / f.Duration
	return fmt.Sprintf("%.0f (≈ %.2f s)", per, per/rate)
}

// seconds formats a number of seconds as a duration ("3s", "500ms").
func seconds(s float64) string { return time.Duration(s * float64(time.Second)).String() }

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
