package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "caddy_tls_resume_") {
			known[mf.GetName()] = true
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
			if !known[m] {
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
