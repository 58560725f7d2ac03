package metrics

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestDocumentedNamesExist keeps docs/metrics.md and the Grafana dashboard
// in step with the collectors: every caddy_tls_resume_* name they mention
// must be one this package registers, and every collector must be documented.
func TestDocumentedNamesExist(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	// Touch one series of each vector so Gather reports it.
	Handshakes.WithLabelValues("x", "false", "false")
	TicketRejections.WithLabelValues("malformed")
	StoreOperations.WithLabelValues("get", "ok")
	EarlyDataRequests.WithLabelValues("allowed")
	UpstreamHandshakes.WithLabelValues("true")
	UpstreamHandshakeFailures.WithLabelValues("certificate")
	HandshakeRefusals.WithLabelValues("x", "revoked")
	HandshakeDuration.WithLabelValues("x", "false", "false")
	VerifyDuration.WithLabelValues("x", "false")
	StoreOperationDuration.WithLabelValues("get")
	StoreCacheEntries.WithLabelValues(CacheMemory)
	StoreCacheEvictions.WithLabelValues(CacheMemory, EvictCapacity)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	// A histogram's series carry suffixes (PromQL reads _bucket for
	// quantiles): docs may name those, but must name the family itself.
	series := map[string]bool{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "caddy_tls_resume_") {
			known[mf.GetName()] = true
			series[mf.GetName()] = true
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					series[mf.GetName()+suffix] = true
				}
			}
		}
	}
	name := regexp.MustCompile(`caddy_tls_resume_[a-z_]+[a-z]`)
	for _, f := range []string{"../../docs/metrics.md", "../../docs/grafana-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mentioned := map[string]bool{}
		for _, m := range name.FindAllString(string(b), -1) {
			mentioned[m] = true
			if !series[m] {
				t.Errorf("%s mentions %s, which is not a registered metric", f, m)
			}
		}
		if strings.HasSuffix(f, ".md") {
			for k := range known {
				if !mentioned[k] {
					t.Errorf("%s does not document %s", f, k)
				}
			}
		}
	}
}

// TestDashboardValid keeps docs/grafana-dashboard.json importable: valid
// JSON, unique panel ids, panels on Grafana's 24-column grid without
// overlapping, every panel described and querying the dashboard's
// Prometheus input.
func TestDashboardValid(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			ID          int    `json:"id"`
			Type        string `json:"type"`
			Title       string `json:"title"`
			Description string `json:"description"`
			GridPos     struct{ H, W, X, Y int }
			Datasource  struct{ UID string }
			Targets     []struct {
				RefID      string `json:"refId"`
				Expr       string `json:"expr"`
				Datasource struct{ UID string }
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard is not valid JSON: %v", err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]bool{}
	cells := map[[2]int]string{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" || p.Description == "" || p.Type == "" {
			t.Errorf("panel %d: title, description and type are required", p.ID)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v off Grafana's 24-column grid", p.Title, g)
		}
	grid:
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := cells[[2]int{x, y}]; ok {
					t.Errorf("panels %q and %q overlap", other, p.Title)
					break grid
				}
				cells[[2]int{x, y}] = p.Title
			}
		}
		if p.Datasource.UID != "${DS_PROMETHEUS}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: no targets or not on the Prometheus input", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: target %+v", p.Title, tg)
			}
			refs[tg.RefID] = true
			if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") {
				t.Errorf("panel %q: unbalanced parentheses in %s", p.Title, tg.Expr)
			}
		}
	}
}
