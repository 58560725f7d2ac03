package main

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"
)

// syntheticResults has the plugin and nginx in one resumed cell for three
// rounds, and two fleets.
func syntheticResults(pluginHS, nginxHS []float64, pluginFleetResumed int) *results {
	c := cell{Chain: "ECDSA P-256", Version: "1.3", Resumed: true}
	mk := func(server string, hs []float64, cpu float64) *cellResult {
		cr := &cellResult{Cell: c, Server: server}
		for i, h := range hs {
			cr.Samples = append(cr.Samples, sample{Round: i + 1, HandshakesPerSec: h, ResumedFraction: 1, CPUPerHandshake: cpu, ServerBusy: 1, ClientBusy: 0.5, P50: 300, P99: 900})
		}
		return cr
	}
	return &results{
		Started: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC), Finished: time.Date(2026, 11, 22, 8, 9, 0, 0, time.UTC),
		Command:  "make bench",
		Settings: settings{Rounds: 3, DurationS: 3, LatencyDurationS: 1, Concurrency: 8, ServerCPUs: "0", ClientCPUs: []int{1}},
		Servers: []serverInfo{
			{ID: "plugin", Label: "Caddy + tls_resume", ResumesMTLS: true},
			{ID: "nginx", Label: "nginx", ResumesMTLS: true},
		},
		Matrix: []*cellResult{mk("plugin", pluginHS, 300), mk("nginx", nginxHS, 600)},
		Fleet: []fleetResult{
			{Setup: fleetSetups[1], Nodes: 3, Concurrency: 4, Duration: 25, Rotation: 5, Connections: 20000, Resumed: 18000, Rotations: -1},
			{Setup: fleetSetups[2], Nodes: 3, Concurrency: 4, Duration: 25, Rotation: 5, Connections: 20000, Resumed: pluginFleetResumed, Rotations: 5},
		},
		Versions: map[string]string{"go": "go1.26.8", "nginx": "nginx version: nginx/1.22.1"},
	}
}

func TestReportTargetsMet(t *testing.T) {
	r := newReport(syntheticResults([]float64{2000, 1000, 2100}, []float64{1000, 500, 1000}, 20000))
	md := r.markdown("docs/chart.svg")
	for _, want := range []string{
		"- **Met**: resumed mTLS handshakes/s, ECDSA P-256 TLS 1.3: plugin ≥ nginx (median ratio 2.00× over 3 rounds).",
		"- **Met**: fleet resumption rate through rotations ≥ 99.9%: 100.000% (20000 of 20000).",
		"| Caddy + tls_resume | 1.3 | resumed | X25519 | none | 2000 | 100.0% | 300 | 100% | 50% | 300 | 900 |",
		"| nginx | ECDSA P-256 TLS 1.3 resumed | 2.00× (2.00–2.10) | 0.50× (0.50–0.50) |",
		"| Caddy (stock), distributed STEK, no client auth | none | 20000 | 18000 | 90.000% | 5 scheduled (stock Caddy does not count them) | 400 (≈ 0.50 s) |",
		"| Caddy + tls_resume, mTLS | required | 20000 | 20000 | 100.000% | 5 counted on every node | 0 |",
		"![Handshakes per second by server and mode](docs/chart.svg)",
		"make bench",
		"- nginx: nginx version: nginx/1.22.1",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q\n%s", want, md)
		}
	}
	if strings.Contains(md, "Missed") {
		t.Errorf("a target reported missed:\n%s", md)
	}
}

// TestReportTargetsMissed: a miss is reported as such, with the figures
// that explain it.
func TestReportTargetsMissed(t *testing.T) {
	res := syntheticResults([]float64{900, 950, 1000}, []float64{1000, 1000, 1000}, 19900)
	for i := range res.Matrix[0].Samples {
		res.Matrix[0].Samples[i].ServerBusy = 0.5 // the client set the pace
	}
	r := newReport(res)
	md := r.markdown("chart.svg")
	for _, want := range []string{
		"| Caddy + tls_resume | 1.3 | resumed | X25519 | none | 950 † | 100.0% | 300 | 50% | 50% | 300 | 900 |",
		"the plugin's core was only 50% busy, so the load generator, not the server, set the pace",
		"- **Missed**: resumed mTLS handshakes/s, ECDSA P-256 TLS 1.3: plugin ≥ nginx (median ratio 0.95× over 3 rounds). Why: the plugin spent 300 µs of CPU per handshake against 600 µs (0.50×)",
		"- **Missed**: fleet resumption rate through rotations ≥ 99.9%: 99.500% (19900 of 20000). Why: 100 connections did not resume (0 errors).",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q\n%s", want, md)
		}
	}
	if s := r.summary(); !strings.Contains(s, "MISSED") {
		t.Errorf("summary does not show the miss:\n%s", s)
	}
}

// TestChartSVG: the chart is well-formed XML with one bar per server and
// cell, and labels escaped.
func TestChartSVG(t *testing.T) {
	res := syntheticResults([]float64{2000, 1000, 2100}, []float64{1000, 500, 1000}, 20000)
	res.Servers[1].Label = "nginx <&>"
	svg := newReport(res).chartSVG()
	dec := xml.NewDecoder(strings.NewReader(svg))
	bars := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				break
			}
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			for _, a := range se.Attr {
				if a.Name.Local == "fill" && a.Value == chartColors[0] || a.Name.Local == "fill" && a.Value == chartColors[1] {
					bars++
				}
			}
		}
	}
	// two legend swatches and two bars
	if bars != 4 {
		t.Errorf("%d coloured rects, want 4 (2 legend + 2 bars)", bars)
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ raw, want float64 }{
		{0, 1}, {0.7, 1}, {1.5, 2}, {3, 5}, {7, 10}, {420, 500}, {1000, 1000}, {1001, 2000},
	} {
		if got := niceStep(tc.raw); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}
