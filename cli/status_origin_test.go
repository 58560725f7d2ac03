package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/tlsresume"
)

const testKEK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// An admin endpoint with enforce_origin refuses requests without an Origin
// (Caddy's 403 "from origin ”"); status sends one naming the address it
// was given, whichever way the address is written.
func TestStatusEnforceOrigin(t *testing.T) {
	admin := loadCaddyAdmin(t, map[string]any{"enforce_origin": true},
		map[string]any{"tls_resume": map[string]any{"kek": testKEK, "ring_name": "origin-test"}})

	// The endpoint does enforce it: a request without Origin is refused.
	resp, err := http.Get("http://" + admin + "/tls_resume/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET without Origin: %s, want 403 (enforce_origin not in effect?)", resp.Status)
	}

	_, port, _ := strings.Cut(admin, ":")
	for _, addr := range []string{admin, "localhost:" + port, "http://" + admin, "http://localhost:" + port + "/"} {
		out, err := runStatus(t, "--address", addr)
		if err != nil {
			t.Errorf("--address %s: %v", addr, err)
			continue
		}
		if !strings.Contains(out, "origin-test (version 1") {
			t.Errorf("--address %s printed:\n%s", addr, out)
		}
	}
}

// A Caddy built without the plugin answers /tls_resume/status with a bare
// 404; status says the tls_resume admin module is not there. The Caddy is
// a real stock one: cmd/caddy of Caddy itself, built from this module's
// dependency graph (standard modules, no plugin).
func TestStatusStockCaddy(t *testing.T) {
	bin := buildStockCaddy(t)
	admin := freeAddr(t)
	dir := t.TempDir()
	cfg, err := json.Marshal(map[string]any{
		"admin":   map[string]any{"listen": admin, "config": map[string]any{"persist": false}},
		"storage": map[string]any{"module": "file_system", "root": filepath.Join(dir, "data")},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "run", "--config", cfgFile)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/config/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("stock Caddy's admin endpoint did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Caddy itself: a bare 404 for the path.
	resp, err := http.Get("http://" + admin + "/tls_resume/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("stock Caddy answered %s, want 404", resp.Status)
	}
	for _, args := range [][]string{{"--address", admin}, {"--json", "--address", admin}} {
		_, err := runStatus(t, args...)
		if err == nil {
			t.Fatalf("%v: status succeeded against a Caddy without the plugin", args)
		}
		if !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), "the tls_resume admin module is not present in the Caddy at "+admin) {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// buildStockCaddy builds Caddy's own cmd/caddy (no plugin) into a
// temporary directory. Its packages are the ones the plugin's cmd/caddy
// compiles, so with a warm build cache this is mostly a link.
func buildStockCaddy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caddy")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/caddyserver/caddy/v2/cmd/caddy").CombinedOutput()
	if err != nil {
		t.Fatalf("building stock Caddy: %v\n%s", err, out)
	}
	return bin
}

// The CLI renders the resumption ratio and the refusals since start when
// the status document carries them, and sends an Origin naming the admin
// address it was given.
func TestStatusRatioAndRefusals(t *testing.T) {
	const fixture = `{
		"ring": "fx", "kek_id": "k1", "version": 3, "rotations": 2, "keys": [],
		"rotation_interval": "12h0m0s", "ticket_lifetime": "30m0s", "poll_interval": "30s",
		"store": {"last_synced": "2026-11-22T10:00:00Z"},
		"handshakes": {"total": 40, "resumed": 30, "mutual": 40, "mutual_resumed": 30,
			"resumption_ratio": 0.75,
			"by_server": {"srv0": {"total": 40, "resumed": 30}}},
		"refusals": {"revoked": 2, "verifier": 1, "other": 0},
		"ticket_rejections": {"expired": 1},
		"early_data": {},
		"now": "2026-11-22T10:00:05Z"
	}`
	var origins []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		origins = append(origins, r.Header.Get("Origin"))
		mu.Unlock()
		if r.URL.Path != "/tls_resume/status" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(fixture))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	out, err := runStatus(t, "--address", addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{
		`(?m)^handshakes:\s+40, 30 resumed \(75\.0%\)$`,
		`(?m)^resumption ratio:\s+75\.0%$`,
		`(?m)^refusals:\s+revoked=2 verifier=1$`,
		`(?m)^ticket rejections:\s+expired=1$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	raw, err := runStatus(t, "--json", "--address", srv.URL)
	if err != nil || !strings.Contains(raw, `"resumption_ratio": 0.75`) {
		t.Errorf("--json: %v\n%s", err, raw)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"http://" + addr, "http://" + addr}; strings.Join(origins, " ") != strings.Join(want, " ") {
		t.Errorf("Origin headers %q, want %q", origins, want)
	}

	// No refusals yet is "none"; a ratio before any handshake is "-".
	var buf strings.Builder
	zero := 0.0
	ext := &statusExtras{Refusals: map[string]uint64{}}
	ext.Handshakes.ResumptionRatio = &zero
	if err := printStatus(&buf, &tlsresume.Status{}, ext); err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^resumption ratio:\s+- \(no handshakes yet\)$`, `(?m)^refusals:\s+none$`} {
		if !regexp.MustCompile(re).MatchString(buf.String()) {
			t.Errorf("output does not match %s:\n%s", re, buf.String())
		}
	}
}
