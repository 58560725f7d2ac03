package hardening

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestStatelessTicketReplay (issue 14, hole 4): one stateless HTTP/3
// ticket, copied into 5 fresh clients, is presented 5 times with a GET in
// 0-RTT. By default (early_data once, no session store) every presentation
// resumes but none gets early data; with early_data replayable, the
// operator's opt-in, early data is accepted, at most 5 times. The
// single-use case with a session store across two nodes is
// sessionstore.TestEarlyDataOnceAcrossNodes.
func TestStatelessTicketReplay(t *testing.T) {
	for _, mode := range []struct {
		name, extra string
		min, max    int
	}{
		{"default", "", 0, 0},
		{"early_data_off", "\t\tearly_data off\n", 0, 0},
		{"early_data_replayable", "\t\tearly_data replayable\n", 1, 5},
	} {
		t.Run(mode.name, func(t *testing.T) {
			set, files := harness.NewPKI(t)
			tester := harness.NewTester(t)
			port := harness.FreePort(t)
			addr := harness.Addr(port)
			logFile := filepath.Join(t.TempDir(), "access.log")
			tester.InitServer(h3Config(t.TempDir(), newKEK(t), mode.extra, port, files, logFile, site{host: "localhost"}), "caddyfile")
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			url := func(p string) string { return "https://localhost:" + strconv.Itoa(port) + p }

			prime := newSessionCache()
			h3Full(t, ctx, addr, url("/prime"), h3TLS(set, set.ClientA, "localhost", prime))
			ticket := prime.last(t)
			early := 0
			for i := range 5 {
				cfg := h3TLS(set, set.ClientA, "localhost", offering(ticket))
				r := h3Early(t, ctx, addr, cfg, http.MethodGet, url(fmt.Sprintf("/replay-%d", i)), "", false)
				t.Logf("presentation %d: %v", i+1, r)
				if !r.Resumed {
					t.Errorf("presentation %d did not resume (%v): the ticket should stay valid", i+1, r)
				}
				if r.Used0RTT {
					early++
				}
			}
			if early < mode.min || early > mode.max {
				t.Errorf("early data accepted %d times of 5; want %d to %d", early, mode.min, mode.max)
			}
		})
	}
}
