package tlsresume

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// Status counts what this app's bindings and guards saw, not the
// process-wide metrics: a second app (a reloaded configuration) starts
// from zero.
func TestStatusCountsThisConfiguration(t *testing.T) {
	newApp := func() (*App, *policyBinding) {
		pol := &caddytls.ConnectionPolicy{TLSConfig: &tls.Config{}}
		b := bindPolicy(pol, "srv", new(keyring.Holder), bindOptions{lifetime: time.Minute})
		return &App{bindings: []*policyBinding{b}, early: new(earlyDataCounts)}, b
	}
	a, b := newApp()
	mutual := []*x509.Certificate{{}}
	if err := b.verify(tls.ConnectionState{ServerName: "full.example"}); err != nil {
		t.Fatal(err)
	}
	if err := b.verify(tls.ConnectionState{ServerName: "resumed.example", DidResume: true, PeerCertificates: mutual}); err != nil {
		t.Fatal(err)
	}
	if ss, _ := b.unwrapSession([]byte{0xff, 1, 2, 3}, tls.ConnectionState{ServerName: "x.example"}); ss != nil {
		t.Fatal("a malformed ticket resumed")
	}
	b.obs.refused(refusedRevoked, &tls.ConnectionState{ServerName: "refused.example"}, nil, errDenied, time.Now())
	a.CountEarlyData(true)
	a.CountEarlyData(false)
	a.CountEarlyData(false)

	var st Status
	a.countInto(&st)
	h := st.Handshakes
	if h.Total != 2 || h.Resumed != 1 || h.Mutual != 1 || h.MutualResumed != 1 || h.ResumptionRatio != 0.5 {
		t.Errorf("handshakes %+v", h)
	}
	if sc := h.ByServer["srv"]; sc.Total != 2 || sc.Resumed != 1 || len(h.ByServer) != 1 {
		t.Errorf("by server %+v", h.ByServer)
	}
	var rejected uint64
	for _, n := range st.TicketRejections {
		rejected += n
	}
	if rejected != 1 || len(st.TicketRejections) != int(numRejections-rejectMalformed) {
		t.Errorf("ticket rejections %v", st.TicketRejections)
	}
	if st.Refusals["revoked"] != 1 || st.Refusals["verifier"] != 0 {
		t.Errorf("refusals %v", st.Refusals)
	}
	if st.EarlyData["allowed"] != 1 || st.EarlyData["rejected"] != 2 {
		t.Errorf("early data %v", st.EarlyData)
	}

	a2, _ := newApp()
	var st2 Status
	a2.countInto(&st2)
	if st2.Handshakes.Total != 0 || st2.Refusals["revoked"] != 0 || st2.EarlyData["rejected"] != 0 {
		t.Errorf("a new configuration's app starts with counts: %+v", st2)
	}
}

// Counting for Status adds no allocation to the handshake path.
func TestStatusCountsDoNotAllocate(t *testing.T) {
	pol := &caddytls.ConnectionPolicy{TLSConfig: &tls.Config{}}
	b := bindPolicy(pol, "srv", new(keyring.Holder), bindOptions{lifetime: time.Minute})
	cs := tls.ConnectionState{DidResume: true, PeerCertificates: []*x509.Certificate{{}}}
	if n := testing.AllocsPerRun(100, func() {
		_ = b.verify(cs)
		b.rejected(rejectExpired)
	}); n != 0 {
		t.Errorf("%v allocations per counted handshake", n)
	}
}
