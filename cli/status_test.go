package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"

	"github.com/tlsresume/caddy-tlsresume/tlsresume"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// loadCaddy runs Caddy in this process with the admin endpoint on a free
// port and the given apps, and stops it when the test ends.
func loadCaddy(t *testing.T, apps map[string]any) string {
	t.Helper()
	return loadCaddyAdmin(t, nil, apps)
}

// loadCaddyAdmin is loadCaddy with extra admin settings (such as
// enforce_origin).
func loadCaddyAdmin(t *testing.T, adminExtra map[string]any, apps map[string]any) string {
	t.Helper()
	admin := freeAddr(t)
	adminCfg := map[string]any{"listen": admin, "config": map[string]any{"persist": false}}
	for k, v := range adminExtra {
		adminCfg[k] = v
	}
	cfg, err := json.Marshal(map[string]any{
		"admin":   adminCfg,
		"storage": map[string]any{"module": "file_system", "root": t.TempDir()},
		"apps":    apps,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading Caddy: %v", err)
	}
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Error(err)
		}
	})
	return admin
}

func runStatus(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := findSubcommand(t, "status")
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestStatusAgainstRunningCaddy(t *testing.T) {
	const kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	admin := loadCaddy(t, map[string]any{"tls_resume": map[string]any{"kek": kek, "ring_name": "cli-test"}})

	raw, err := runStatus(t, "--address", admin, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st tlsresume.Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("--json printed %q: %v", raw, err)
	}
	if st.Ring != "cli-test" || st.SealingKeyID == "" || len(st.Keys) != 2 {
		t.Fatalf("status %+v", st)
	}

	out, err := runStatus(t, "--address", "http://"+admin+"/")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ring:", "cli-test (version 1, 0 rotations)",
		"kek id:", st.KEKID,
		"sealing key:", st.SealingKeyID,
		"invalidated before:", "never",
		"denied certificates:", "storage:", "ok, last synced",
		"KEY", "STATE",
		st.Keys[0].ID + "  sealing", st.Keys[1].ID + "  staged",
		"handshakes:", "ticket rejections:", "early data:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The staged key's age reads as a time to come.
	if !regexp.MustCompile(st.Keys[1].ID + `\s+staged\s+\S+\s+in \d`).MatchString(out) {
		t.Errorf("staged key line not as expected:\n%s", out)
	}
}

func TestStatusErrors(t *testing.T) {
	// No tls_resume app: the admin API's message reaches the user.
	admin := loadCaddy(t, map[string]any{})
	if _, err := runStatus(t, "--address", admin); err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "not running") {
		t.Errorf("without the app: %v", err)
	}
	// Nothing listening.
	if _, err := runStatus(t, "--address", freeAddr(t)); err == nil || !strings.Contains(err.Error(), "reaching Caddy's admin endpoint") {
		t.Errorf("no admin endpoint: %v", err)
	}
	if _, err := runStatus(t, "extra"); err == nil {
		t.Error("status accepted an argument")
	}
}

func TestPrintStatusFailingStorage(t *testing.T) {
	var buf bytes.Buffer
	st := &tlsresume.Status{Ring: "r", Store: tlsresume.StoreStatus{LastError: "loading ring: connection refused", Failures: 4},
		Handshakes:       tlsresume.HandshakeCounts{Total: 4, Resumed: 3, ByServer: map[string]tlsresume.ServerCounts{"srv0": {Total: 4, Resumed: 3}}},
		TicketRejections: map[string]uint64{"expired": 2, "tampered": 0}}
	if err := printStatus(&buf, st, nil); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"FAILING (4 consecutive failures): loading ring: connection refused",
		"none (no ring loaded",
		"4, 3 resumed (75.0%)",
		"server srv0:", "expired=2", "early data:         none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "tampered") {
		t.Errorf("zero counts printed:\n%s", out)
	}
	// A node that reports no ratio and no refusals gets no such lines.
	if strings.Contains(out, "resumption ratio") || strings.Contains(out, "refusals") {
		t.Errorf("absent fields printed:\n%s", out)
	}
}
