package metrics

import (
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
