package earlydata

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestCaddyAdaptCommand runs `caddy adapt` of the plugin's Caddy build (as a
// user would after xcaddy) on a Caddyfile with the directive, and checks the
// JSON: the guard with its options, named matchers resolved, and its place
// in the handler chain without any `order` option.
func TestCaddyAdaptCommand(t *testing.T) {
	bin := harness.BuildCaddy(t)
	dir := t.TempDir()
	adapt := func(caddyfile string) ([]byte, []byte, error) {
		t.Helper()
		path := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "adapt", "--config", path, "--adapter", "caddyfile")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		return out, []byte(stderr.String()), err
	}

	out, stderr, err := adapt(`example.com {
	@logout path /logout
	reverse_proxy localhost:9000
	header Strict-Transport-Security max-age=31536000
	early_data_guard {
		methods GET HEAD
		refuse @logout
		allow {
			method PUT
			path /idem/*
		}
	}
}
`)
	if err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, stderr)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []struct {
							Handler string `json:"handler"`
							Routes  []struct {
								Handle []map[string]any `json:"handle"`
							} `json:"routes"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("adapted JSON: %v\n%s", err, out)
	}
	var chain []map[string]any
	for _, route := range cfg.Apps.HTTP.Servers["srv0"].Routes {
		for _, h := range route.Handle {
			for _, sub := range h.Routes {
				chain = append(chain, sub.Handle...)
			}
		}
	}
	var names []string
	var guard map[string]any
	for _, h := range chain {
		names = append(names, h["handler"].(string))
		if h["handler"] == "early_data_guard" {
			guard = h
		}
	}
	if got := strings.Join(names, ","); got != "headers,early_data_guard,reverse_proxy" {
		t.Fatalf("handler chain = %s; want headers,early_data_guard,reverse_proxy\n%s", got, out)
	}
	b, _ := json.Marshal(guard)
	const want = `{"allow":[{"method":["PUT"],"path":["/idem/*"]}],"handler":"early_data_guard","methods":["GET","HEAD"],"refuse":[{"path":["/logout"]}]}`
	if string(b) != want {
		t.Fatalf("guard JSON = %s\nwant         %s", b, want)
	}

	// Bad input makes `caddy adapt` fail with a message naming the problem.
	for _, tc := range []struct{ guard, want string }{
		{"early_data_guard {\n\t\tmethod GET\n\t}", `unrecognized subdirective "method"`},
		{"early_data_guard {\n\t\tmethods\n\t}", "methods: at least one HTTP method is required"},
		{"early_data_guard {\n\t\trefuse @missing\n\t}", "unrecognized matcher name: @missing"},
	} {
		_, stderr, err := adapt("example.com {\n\t" + tc.guard + "\n}\n")
		if err == nil || !strings.Contains(string(stderr), tc.want) {
			t.Errorf("caddy adapt of %q: err %v, stderr %s; want an error containing %q", tc.guard, err, stderr, tc.want)
		}
	}
}
