package hardening

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestConfigErrorsAtLoad (issue 14, "also found"): an explicit kek with an
// empty value (literal, or a placeholder that evaluates to nothing) and a
// rotation_interval above 7 days fail when the config is adapted or
// loaded, with a message naming the option; only a missing kek means the
// node-local key, and 7 days is still accepted.
func TestConfigErrorsAtLoad(t *testing.T) {
	bin := harness.BuildCaddy(t)
	site := "\n:0 {\n\trespond ok\n}\n"
	caddyfile := func(opts string) string { return "{\n\ttls_resume {\n" + opts + "\t}\n}\n" + site }
	const kek = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes
	for _, c := range []struct {
		name, adapter, config string
		// cmd is "adapt" or "validate"; want are substrings of the error
		// output, none for a config that must be accepted.
		cmd  string
		want []string
	}{
		{"caddyfile kek empty literal", "caddyfile", caddyfile("\t\tkek \"\"\n"), "adapt", []string{"kek", "empty"}},
		{"caddyfile kek unset env var", "caddyfile", caddyfile("\t\tkek {$TLS_RESUME_TEST_UNSET_KEK}\n"), "adapt", []string{"kek"}},
		{"caddyfile kek unset env placeholder", "caddyfile", caddyfile("\t\tkek {env.TLS_RESUME_TEST_UNSET_KEK}\n"), "validate", []string{"kek", "empty"}},
		{"caddyfile rotation_interval 8d", "caddyfile", caddyfile("\t\tkek " + kek + "\n\t\trotation_interval 8d\n"), "adapt", []string{"rotation_interval", "7 days"}},
		{"caddyfile rotation_interval 169h", "caddyfile", caddyfile("\t\tkek " + kek + "\n\t\trotation_interval 169h\n"), "adapt", []string{"rotation_interval", "7 days"}},
		{"caddyfile rotation_interval 7d accepted", "caddyfile", caddyfile("\t\tkek " + kek + "\n\t\trotation_interval 7d\n"), "validate", nil},
		{"caddyfile no kek accepted", "caddyfile", caddyfile(""), "validate", nil},
		{"json kek empty", "json", `{"apps":{"tls_resume":{"kek":""}}}`, "validate", []string{"kek", "empty"}},
		{"json kek unset env placeholder", "json", `{"apps":{"tls_resume":{"kek":"{env.TLS_RESUME_TEST_UNSET_KEK}"}}}`, "validate", []string{"kek", "empty"}},
		{"json rotation_interval 8d", "json", `{"apps":{"tls_resume":{"kek":"` + kek + `","rotation_interval":"8d"}}}`, "validate", []string{"rotation_interval", "7 days"}},
		{"json rotation_interval 2562047h", "json", `{"apps":{"tls_resume":{"kek":"` + kek + `","rotation_interval":"2562047h"}}}`, "validate", []string{"rotation_interval", "7 days"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "config")
			if err := os.WriteFile(file, []byte(c.config), 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{c.cmd, "--config", file}
			if c.adapter != "json" {
				args = append(args, "--adapter", c.adapter)
			}
			out, err := runCaddy(t, bin, dir, args...)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("caddy %s: %v; want the config accepted\n%s", c.cmd, err, out)
				}
				return
			}
			if err == nil {
				t.Fatalf("caddy %s accepted the config; want an error naming %q\n%s", c.cmd, c.want, out)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("caddy %s: error does not mention %q:\n%s", c.cmd, w, out)
				}
			}
		})
	}

	// caddy run with the bad JSON fails too, instead of falling back to a
	// node-local key.
	t.Run("json kek empty, caddy run", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "caddy.json")
		if err := os.WriteFile(file, []byte(`{"admin":{"disabled":true},"apps":{"tls_resume":{"kek":""}}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := runCaddy(t, bin, dir, "run", "--config", file)
		if err == nil || !strings.Contains(out, "kek") {
			t.Fatalf("caddy run with kek \"\": %v; want a failure naming kek\n%s", err, out)
		}
		if _, statErr := os.Stat(filepath.Join(dir, "xdg-data", "caddy", "tls_resume")); statErr == nil {
			t.Errorf("caddy run with kek \"\" wrote node-local tls_resume state")
		}
	})
}

// runCaddy runs the Caddy binary with private data and config directories
// under dir, bounded to 30 seconds, and returns its combined output.
func runCaddy(t *testing.T, bin, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"),
		"XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"),
	)
	for i, kv := range cmd.Env {
		if strings.HasPrefix(kv, "TLS_RESUME_TEST_UNSET_KEK=") {
			cmd.Env[i] = "TLS_RESUME_TEST_UNSET_KEK_IGNORED="
		}
	}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("caddy %v did not finish within 30s\n%s", args, out)
	}
	return string(out), err
}
