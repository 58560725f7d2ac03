package caddyfile

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func adaptGlobal(t *testing.T, src string) (map[string]any, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg, nil
}

func TestTLSResumeGlobalOption(t *testing.T) {
	cfg, err := adaptGlobal(t, `{
	tls_resume {
		kek {env.TLS_RESUME_KEK}
		kek_previous {file./etc/caddy/old.kek}
		rotation_interval 6h
		ticket_lifetime 20m
		poll_interval 30s
		max_clock_skew 10s
		servers srv0 srv1
		resume_across_hosts
		ring_name edge
		storage file_system /var/lib/ring
	}
}
example.com {
	respond ok
}`)
	if err != nil {
		t.Fatal(err)
	}
	app := cfg["apps"].(map[string]any)["tls_resume"].(map[string]any)
	want := map[string]any{
		"kek":                 "{env.TLS_RESUME_KEK}",
		"kek_previous":        []any{"{file./etc/caddy/old.kek}"},
		"rotation_interval":   float64(6 * 3600e9),
		"ticket_lifetime":     float64(20 * 60e9),
		"poll_interval":       float64(30e9),
		"max_clock_skew":      float64(10e9),
		"servers":             []any{"srv0", "srv1"},
		"resume_across_hosts": true,
		"ring_name":           "edge",
		"storage":             map[string]any{"module": "file_system", "root": "/var/lib/ring"},
	}
	got, _ := json.Marshal(app)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("adapted app:\n got %s\nwant %s", got, exp)
	}

	// A bare option enables the app with defaults.
	cfg, err = adaptGlobal(t, "{\n\ttls_resume\n}\nexample.com {\n\trespond ok\n}")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg["apps"].(map[string]any)["tls_resume"]; !ok {
		t.Fatal("bare tls_resume did not enable the app")
	}
}

func TestTLSResumeGlobalOptionErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"bogus 1", `unknown option "bogus"`},
		{"rotation_interval soon", `rotation_interval: invalid duration "soon"`},
		{"ticket_lifetime -5m", `ticket_lifetime: must be positive, got "-5m"`},
		{"ticket_lifetime", "ticket_lifetime takes exactly one duration"},
		{"kek a b", "kek takes exactly one value"},
		{"kek a\n\t\tkek b", `duplicate option "kek"`},
		{"servers", "servers needs at least one server name"},
		{"resume_across_hosts yes", `resume_across_hosts takes no value, got "yes"`},
		{"storage", "storage needs a module name"},
		{"storage nosuch", `storage "nosuch"`},
		{"kek_previous", "kek_previous needs at least one key"},
		{`kek ""`, "kek: empty value"},
		{"rotation_interval 8d", `rotation_interval: "8d" exceeds 7 days`},
		{"early_data sometimes", `early_data: unknown value "sometimes"`},
		{"early_data", "early_data takes exactly one value"},
		{"site", "site needs at least one host name"},
		{"site a.example {\n\t\t}", "give ticket_lifetime or resumption"},
		{"site a.example {\n\t\t\tresumption maybe\n\t\t}", "resumption takes on or off"},
		{"site a.example {\n\t\t\tticket_lifetime soon\n\t\t}", `ticket_lifetime: invalid positive duration "soon"`},
		{"site a.example {\n\t\t\tbogus\n\t\t}", `unknown option "bogus"`},
	} {
		_, err := adaptGlobal(t, "{\n\ttls_resume {\n\t\t"+tc.body+"\n\t}\n}\nexample.com {\n\trespond ok\n}")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to contain %q", tc.body, err, tc.want)
		}
	}
	// An unset environment variable leaves kek empty: an error, never a
	// silent node-local key.
	t.Setenv("TLS_RESUME_TEST_UNSET", "")
	if _, err := adaptGlobal(t, "{\n\ttls_resume {\n\t\tkek {$TLS_RESUME_TEST_UNSET}\n\t}\n}\n"); err == nil || !strings.Contains(err.Error(), "kek") {
		t.Errorf("kek from an unset variable: %v", err)
	}
	if _, err := adaptGlobal(t, "{\n\ttls_resume extra\n}\n"); err == nil {
		t.Error("argument on the option line accepted")
	}
}

func TestTLSResumeSitesAndEarlyData(t *testing.T) {
	cfg, err := adaptGlobal(t, `{
	tls_resume {
		early_data replayable
		site pay.example.com admin.example.com {
			ticket_lifetime 5m
		}
		site *.public.example.com {
			resumption off
		}
	}
}
example.com {
	respond ok
}`)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(cfg["apps"].(map[string]any)["tls_resume"])
	want := `{"early_data":"replayable","sites":[{"hosts":["pay.example.com","admin.example.com"],"ticket_lifetime":300000000000},{"hosts":["*.public.example.com"],"resumption":"off"}]}`
	if string(got) != want {
		t.Fatalf("adapted\n%s\nwant\n%s", got, want)
	}
}
