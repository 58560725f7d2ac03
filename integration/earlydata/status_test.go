package earlydata

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/tlsresume"
)

// statusTemplate: the front site of caddyfileTemplate under the tls_resume
// app, with stateless tickets allowed to carry 0-RTT.
const statusTemplate = `{
	storage file_system {{STORAGE}}
	servers :{{FRONT}} {
		protocols h1 h2 h3
	}
	tls_resume {
		early_data replayable
	}
}

https://localhost:{{FRONT}} {
	tls {{CERT}} {{KEY}}
	early_data_guard
	respond "front method={method} early={http.vars.early_data} body={http.request.body}"
}
`

// TestStatusCountsEarlyData: the guards of the configuration report their
// outcomes to its tls_resume app, whose status counts them from zero when
// the configuration is loaded (the metric keeps the process's total).
func TestStatusCountsEarlyData(t *testing.T) {
	set, files := harness.NewPKI(t)
	front := harness.FreePorts(t, 1)[0]
	cfg := strings.NewReplacer(
		"{{FRONT}}", strconv.Itoa(front),
		"{{CERT}}", files.ServerCert,
		"{{KEY}}", files.ServerKey,
		"{{STORAGE}}", filepath.Join(t.TempDir(), "storage"),
	).Replace(statusTemplate)
	tester := harness.NewTester(t)
	tester.InitServer(cfg, "caddyfile")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	addr := harness.Addr(front)
	url := "https://localhost:" + strconv.Itoa(front) + "/x"
	relay := newLatencyRelay(t, addr, serverDelay)
	client := newH3Client(set)
	client.primeTicket(t, ctx, addr, url)

	conn, cc := client.dialEarly(t, ctx, relay.Addr())
	get := send(t, ctx, cc, http.MethodGet, url, "")
	post := send(t, ctx, cc, http.MethodPost, url, "a=1")
	requireStillEarly(t, conn)
	if r := read(t, get); r.status != 200 {
		t.Errorf("GET in 0-RTT: %d %q", r.status, r.body)
	}
	if r := read(t, post); r.status != http.StatusTooEarly {
		t.Errorf("POST in 0-RTT: %d %q", r.status, r.body)
	}
	requireUsed0RTT(t, ctx, conn)

	resp, err := http.Get(tester.AdminURL("/tls_resume/status"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st tlsresume.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.EarlyData["allowed"] != 1 || st.EarlyData["rejected"] != 1 {
		t.Errorf("status early_data %v; want allowed 1, rejected 1", st.EarlyData)
	}
	if st.Handshakes.Total < 2 || st.Handshakes.Resumed < 1 {
		t.Errorf("status handshakes %+v; want the full and the resumed one", st.Handshakes)
	}
}
