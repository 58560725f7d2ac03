package tlsresume_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The tls_resume global option.
	_ "github.com/tlsresume/caddy-tlsresume/caddyfile"
)

func adapt(t *testing.T, src string) ([]byte, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	return out, err
}

// TestSessionStoreCaddyfileAdapt: `session_store` adapts to the app's
// session_store JSON, and the adapted config provisions.
func TestSessionStoreCaddyfileAdapt(t *testing.T) {
	for _, tc := range []struct {
		block  string
		want   string
		policy string // session_store_policy; "" when absent
	}{
		{`session_store redis {
			address 127.0.0.1:6379 127.0.0.1:6380
			address 127.0.0.1:6381
			username edge
			password {env.REDIS_PW}
			key_prefix fleet1:
			dial_timeout 2s
			read_timeout 200ms
			write_timeout 200ms
			budget 30ms
			fallback stateless
			single_use
			breaker_threshold 3
			breaker_cooldown 10s
		}`, `{"addresses":["127.0.0.1:6379","127.0.0.1:6380","127.0.0.1:6381"],"dial_timeout":2000000000,"key_prefix":"fleet1:","module":"redis","password":"{env.REDIS_PW}","read_timeout":200000000,"username":"edge","write_timeout":200000000}`,
			`{"breaker_cooldown":10000000000,"breaker_threshold":3,"budget":30000000,"fallback":"stateless","single_use":true}`},
		// Policy options anywhere in the block, the store's nested
		// blocks left whole.
		{`session_store redis {
			budget 2s
			address 127.0.0.1:26379
			tls {
				server_name redis.internal
			}
			single_use
			master_name mymaster
		}`, `{"addresses":["127.0.0.1:26379"],"master_name":"mymaster","module":"redis","tls":{"server_name":"redis.internal"}}`,
			`{"budget":2000000000,"single_use":true}`},
		{`session_store memory {
			fallback stateless
		}`, `{"module":"memory"}`, `{"fallback":"stateless"}`},
		{`session_store redis {
			address 127.0.0.1:26379
			master_name mymaster
			tls {
				server_name redis.internal
			}
		}`, `{"addresses":["127.0.0.1:26379"],"master_name":"mymaster","module":"redis","tls":{"server_name":"redis.internal"}}`, ""},
		{`session_store memory {
			max_entries 5000
		}`, `{"max_entries":5000,"module":"memory"}`, ""},
		{`session_store memory`, `{"module":"memory"}`, ""},
	} {
		src := "{\n\tadmin off\n\ttls_resume {\n\t\tkek AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\t\t" + tc.block + "\n\t}\n}\n:0 {\n\trespond ok\n}\n"
		out, err := adapt(t, src)
		if err != nil {
			t.Fatalf("%s: %v", tc.block, err)
		}
		var cfg struct {
			Apps struct {
				TLSResume struct {
					SessionStore       json.RawMessage `json:"session_store"`
					SessionStorePolicy json.RawMessage `json:"session_store_policy"`
				} `json:"tls_resume"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		var got any
		if err := json.Unmarshal(cfg.Apps.TLSResume.SessionStore, &got); err != nil {
			t.Fatalf("%s: session_store %s: %v", tc.block, cfg.Apps.TLSResume.SessionStore, err)
		}
		norm, _ := json.Marshal(got)
		if string(norm) != tc.want {
			t.Errorf("adapted session_store\n got %s\nwant %s", norm, tc.want)
		}
		var gotPolicy string
		if p := cfg.Apps.TLSResume.SessionStorePolicy; p != nil {
			var v any
			if err := json.Unmarshal(p, &v); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(v)
			gotPolicy = string(b)
		}
		if gotPolicy != tc.policy {
			t.Errorf("adapted session_store_policy\n got %s\nwant %s", gotPolicy, tc.policy)
		}
		var c caddy.Config
		if err := json.Unmarshal(out, &c); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&c); err != nil {
			t.Errorf("%s: adapted config does not provision: %v", tc.block, err)
		}
	}
}

func TestSessionStoreCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ block, want string }{
		{"session_store", "session_store needs a module name"},
		{"session_store mongo", `session_store "mongo"`},
		{"session_store redis {\n budget 0s\n}", "budget: must be positive"},
		{"session_store redis {\n fallback never\n}", "fallback: must be full or stateless"},
		{"session_store memory {\n max_entries lots\n}", `max_entries: must be a positive integer, got "lots"`},
		// The policy options, taken out of the block by the app's parser:
		// the same messages, with the file and line.
		{"session_store redis {\n fallback maybe\n}", `session_store redis: fallback: must be full or stateless, got "maybe", at Caddyfile:4`},
		{"session_store redis {\n address a:1\n budget -1s\n}", `session_store redis: budget: must be positive, got "-1s", at Caddyfile:5`},
		{"session_store memory {\n budget soon\n}", `session_store memory: budget: invalid duration "soon"`},
		{"session_store memory {\n breaker_threshold 0\n}", `session_store memory: breaker_threshold: must be a positive integer, got "0"`},
		{"session_store memory {\n single_use yes\n}", `session_store memory: single_use takes no value, got "yes"`},
		{"session_store redis {\n budget 1s\n address a:1\n budget 2s\n}", `session_store redis: duplicate option "budget", at Caddyfile:6`},
		// The store's own options keep their positions too.
		{"session_store redis {\n budget 1s\n\n sentinel x\n}", `session_store redis: unknown option "sentinel", at Caddyfile:6`},
		{"session_store memory {\n single_use\n max_entries 0\n}", `max_entries: must be a positive integer, got "0", at Caddyfile:5`},
		{"session_store mongo {\n budget 0s\n}", `session_store "mongo": getting module named 'tls_resume.session_stores.mongo'`},
	} {
		src := "{\n\ttls_resume {\n\t\t" + tc.block + "\n\t}\n}\n:0 {\n\trespond ok\n}\n"
		_, err := adapt(t, src)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.block, err, tc.want)
		}
	}
}

// TestSessionStoreProvisionErrors: store mistakes fail at provision with
// the field named.
func TestSessionStoreProvisionErrors(t *testing.T) {
	type policy = map[string]any
	for _, tc := range []struct {
		store  map[string]any
		policy policy
		want   string
	}{
		{map[string]any{"module": "redis"}, nil, "addresses: at least one"},
		{map[string]any{"module": "redis", "addresses": []string{"redis"}}, nil, `addresses[0]: "redis" is not host:port`},
		{map[string]any{"module": "redis", "addresses": []string{"a:1"}}, policy{"fallback": "later"}, `fallback: must be "full" or "stateless", got "later"`},
		{map[string]any{"module": "redis", "addresses": []string{"a:1"}}, policy{"budget": "-5ms"}, "budget: must be positive"},
		{map[string]any{"module": "memory", "max_entries": -1}, nil, "max_entries: must be positive"},
		{map[string]any{"module": "memory"}, policy{"budget": "1h"}, "budget: 1h0m0s exceeds 5s"},
		{map[string]any{"module": "memory"}, policy{"breaker_cooldown": "1h"}, "breaker_cooldown: 1h0m0s exceeds 10m0s"},
		{map[string]any{"module": "memory"}, policy{"breaker_threshold": 1000000}, "breaker_threshold: 1000000 exceeds 10000"},
		{map[string]any{"module": "redis", "addresses": []string{"a:1"}, "read_timeout": "2h"}, nil, "read_timeout: 2h0m0s exceeds 1m0s"},
		{map[string]any{"module": "nope"}, nil, "session_store"},
		{nil, policy{"budget": "1s"}, "session_store_policy: there is no session_store"},
		{map[string]any{"module": "redis", "addresses": []string{"127.0.0.1:1"}}, nil, ""},
		{map[string]any{"module": "memory"}, nil, ""},
		{map[string]any{"module": "memory"}, policy{"budget": "1s", "fallback": "stateless", "single_use": true, "breaker_threshold": 2, "breaker_cooldown": "1m"}, ""},
	} {
		err := validateApp(t, tc.store, tc.policy)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v %v: %v", tc.store, tc.policy, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "session_store") {
			t.Errorf("%v %v: error %v, want it to contain %q and name session_store", tc.store, tc.policy, err, tc.want)
		}
	}
}

// validateApp loads and provisions a config of the tls_resume app with
// the given session_store and session_store_policy (each absent when nil).
func validateApp(t *testing.T, store, policy map[string]any) error {
	t.Helper()
	app := map[string]any{"kek": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	if store != nil {
		app["session_store"] = store
	}
	if policy != nil {
		app["session_store_policy"] = policy
	}
	raw, _ := json.Marshal(map[string]any{
		"admin": map[string]any{"disabled": true},
		"apps": map[string]any{
			"tls_resume": app,
			"http":       map[string]any{"servers": map[string]any{"srv0": map[string]any{"listen": []string{"127.0.0.1:0"}}}},
		},
	})
	var c caddy.Config
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&c)
}

// TestSessionStoreMovedOptionsJSON: a JSON config written before the
// handshake options moved to session_store_policy fails at load, saying
// what to write instead.
func TestSessionStoreMovedOptionsJSON(t *testing.T) {
	for _, tc := range []struct {
		store map[string]any
		want  string
	}{
		{map[string]any{"module": "redis", "addresses": []string{"a:1"}, "budget": "50ms"},
			`session_store "redis": "budget" is now an option of the tls_resume app: move it to "session_store_policy": {"budget": "50ms"}`},
		{map[string]any{"module": "memory", "fallback": "stateless"},
			`session_store "memory": "fallback" is now an option of the tls_resume app: move it to "session_store_policy": {"fallback": "stateless"}`},
		{map[string]any{"module": "memory", "max_entries": 10, "single_use": true},
			`session_store "memory": "single_use" is now an option of the tls_resume app: move it to "session_store_policy": {"single_use": true}`},
		{map[string]any{"module": "redis", "addresses": []string{"a:1"}, "breaker_threshold": 3},
			`move it to "session_store_policy": {"breaker_threshold": 3}`},
		{map[string]any{"module": "memory", "breaker_cooldown": 5000000000},
			`move it to "session_store_policy": {"breaker_cooldown": 5000000000}`},
		// Other unknown fields are still Caddy's strict decoding's.
		{map[string]any{"module": "memory", "max_entry": 10}, `unknown field "max_entry"`},
	} {
		err := validateApp(t, tc.store, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want it to contain %s", tc.store, err, tc.want)
		}
	}
}
