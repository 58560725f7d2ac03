package admin

import (
	"context"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// `caddy tls-resume status` reads a running node's admin API.
func TestStatusCommand(t *testing.T) {
	c, set := startFleet(t)
	n := c.Node(0)
	resumable(t, n, set, set.ClientA)
	if code, body := call(t, n, http.MethodPost, "/tls_resume/revoke", `{"sha256": "`+strings.Repeat("ab", 32)+`"}`); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, body)
	}
	st := status(t, n)
	bin := harness.BuildCaddy(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	out, err := exec.CommandContext(ctx, bin, "tls-resume", "status", "--address", n.AdminAddr).CombinedOutput()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, re := range []string{
		`(?m)^ring:\s+default \(version \d+, 0 rotations\)$`,
		`(?m)^kek id:\s+` + st.KEKID + `$`,
		`(?m)^sealing key:\s+` + st.SealingKeyID + `$`,
		`(?m)^denied certificates:\s+1$`,
		`(?m)^storage:\s+ok, last synced`,
		`(?m)^` + st.SealingKeyID + `\s+sealing\s`,
		`(?m)^mutual TLS:\s+[1-9]\d*, [1-9]\d* resumed`,
	} {
		if !regexp.MustCompile(re).Match(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	if raw, err := exec.CommandContext(ctx, bin, "tls-resume", "status", "--json", "--address", n.AdminAddr).Output(); err != nil || !strings.Contains(string(raw), `"kek_id": "`+st.KEKID+`"`) {
		t.Errorf("--json: %v\n%s", err, raw)
	}
	// A wrong address fails with a message, not a usage dump.
	out, err = exec.CommandContext(ctx, bin, "tls-resume", "status", "--address", harness.Addr(harness.FreePort(t))).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "reaching Caddy's admin endpoint") || strings.Contains(string(out), "Usage:") {
		t.Errorf("unreachable admin: %v\n%s", err, out)
	}
}
