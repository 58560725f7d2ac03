package tlsresume

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

const goodKEK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

func validate(t *testing.T, app map[string]any, extraApps map[string]any) error {
	t.Helper()
	apps := map[string]any{
		"tls_resume": app,
		"http": map[string]any{"servers": map[string]any{
			"srv0": map[string]any{"listen": []string{"127.0.0.1:0"}},
		}},
	}
	for k, v := range extraApps {
		apps[k] = v
	}
	raw, err := json.Marshal(map[string]any{"admin": map[string]any{"disabled": true}, "apps": apps})
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

func TestProvisionErrors(t *testing.T) {
	t.Setenv("TLS_RESUME_TEST_KEK", goodKEK)
	for _, tc := range []struct {
		name string
		app  map[string]any
		want string // empty: must validate
	}{
		{"defaults", map[string]any{}, ""},
		{"kek from env", map[string]any{"kek": "{env.TLS_RESUME_TEST_KEK}"}, ""},
		{"kek not base64", map[string]any{"kek": "not base64!"}, "kek: not standard base64"},
		{"kek too short", map[string]any{"kek": "AAEC"}, "kek: key-encryption key must be 32 bytes, got 3"},
		{"kek env unset", map[string]any{"kek": "{env.TLS_RESUME_UNSET_KEK}"}, "kek: "},
		{"previous without kek", map[string]any{"kek_previous": []string{goodKEK}}, "kek_previous requires kek"},
		{"bad previous", map[string]any{"kek": goodKEK, "kek_previous": []string{"xx"}}, "kek_previous[0]: not standard base64"},
		{"unknown server", map[string]any{"servers": []string{"nope"}}, `servers: no HTTP server named "nope" (servers: [srv0])`},
		{"lifetime too long", map[string]any{"ticket_lifetime": "8d"}, "ticket_lifetime: 192h0m0s exceeds the 7-day limit"},
		{"interval too short for polling", map[string]any{"rotation_interval": "10s", "poll_interval": "5s"}, "rotation_interval 10s is too short"},
		{"negative poll", map[string]any{"poll_interval": "-1s"}, "poll_interval: must be positive"},
		{"kek empty", map[string]any{"kek": ""}, "kek: empty value"},
		{"kek empty placeholder", map[string]any{"kek": "{env.TLS_RESUME_UNSET_KEK}"}, "kek: evaluated placeholder {env.TLS_RESUME_UNSET_KEK} is empty"},
		{"rotation above a week", map[string]any{"rotation_interval": "2562047h"}, "rotation_interval: 2562047h0m0s exceeds 7 days"},
		{"rotation a week", map[string]any{"rotation_interval": "7d"}, ""},
		{"poll above an hour", map[string]any{"poll_interval": "2h", "rotation_interval": "7d"}, "poll_interval: 2h0m0s exceeds 1h"},
		{"skew above an hour", map[string]any{"max_clock_skew": "2h", "rotation_interval": "7d"}, "max_clock_skew: 2h0m0s exceeds 1h"},
		{"early data", map[string]any{"early_data": "replayable"}, ""},
		{"bad early data", map[string]any{"early_data": "yes"}, `early_data: unknown value "yes"`},
		{"site above the lifetime", map[string]any{"sites": []any{map[string]any{"hosts": []string{"a.example"}, "ticket_lifetime": "1h"}}}, "sites[0]: ticket_lifetime: 1h0m0s exceeds the app's ticket_lifetime 30m0s"},
		{"site", map[string]any{"sites": []any{map[string]any{"hosts": []string{"a.example"}, "resumption": "off"}}}, ""},
		{"plain-HTTP server", map[string]any{"servers": []string{"srv0"}}, `servers: HTTP server "srv0" serves no TLS`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(t, tc.app, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestProvisionRefusesDisabledTickets(t *testing.T) {
	err := validate(t, map[string]any{}, map[string]any{
		"tls": map[string]any{"session_tickets": map[string]any{"disabled": true}},
	})
	if err == nil || !strings.Contains(err.Error(), "session_tickets disabled") {
		t.Fatalf("got %v", err)
	}
}
