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
		block string
		want  string
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
		}`, `{"addresses":["127.0.0.1:6379","127.0.0.1:6380","127.0.0.1:6381"],"breaker_cooldown":10000000000,"breaker_threshold":3,"budget":30000000,"dial_timeout":2000000000,"fallback":"stateless","key_prefix":"fleet1:","module":"redis","password":"{env.REDIS_PW}","read_timeout":200000000,"single_use":true,"username":"edge","write_timeout":200000000}`},
		{`session_store redis {
			address 127.0.0.1:26379
			master_name mymaster
			tls {
				server_name redis.internal
			}
		}`, `{"addresses":["127.0.0.1:26379"],"master_name":"mymaster","module":"redis","tls":{"server_name":"redis.internal"}}`},
		{`session_store memory {
			max_entries 5000
		}`, `{"max_entries":5000,"module":"memory"}`},
		{`session_store memory`, `{"module":"memory"}`},
	} {
		src := "{\n\tadmin off\n\ttls_resume {\n\t\tkek AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n\t\t" + tc.block + "\n\t}\n}\n:0 {\n\trespond ok\n}\n"
		out, err := adapt(t, src)
		if err != nil {
			t.Fatalf("%s: %v", tc.block, err)
		}
		var cfg struct {
			Apps struct {
				TLSResume struct {
					SessionStore json.RawMessage `json:"session_store"`
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
	for _, tc := range []struct {
		store map[string]any
		want  string
	}{
		{map[string]any{"module": "redis"}, "addresses: at least one"},
		{map[string]any{"module": "redis", "addresses": []string{"redis"}}, `addresses[0]: "redis" is not host:port`},
		{map[string]any{"module": "redis", "addresses": []string{"a:1"}, "fallback": "later"}, `fallback: must be "full" or "stateless", got "later"`},
		{map[string]any{"module": "redis", "addresses": []string{"a:1"}, "budget": "-5ms"}, "budget: must be positive"},
		{map[string]any{"module": "memory", "max_entries": -1}, "max_entries: must be positive"},
		{map[string]any{"module": "memory", "budget": "1h"}, "budget: 1h0m0s exceeds 5s"},
		{map[string]any{"module": "memory", "breaker_cooldown": "1h"}, "breaker_cooldown: 1h0m0s exceeds 10m0s"},
		{map[string]any{"module": "memory", "breaker_threshold": 1000000}, "breaker_threshold: 1000000 exceeds 10000"},
		{map[string]any{"module": "redis", "addresses": []string{"a:1"}, "read_timeout": "2h"}, "read_timeout: 2h0m0s exceeds 1m0s"},
		{map[string]any{"module": "nope"}, "session_store"},
		{map[string]any{"module": "redis", "addresses": []string{"127.0.0.1:1"}}, ""},
		{map[string]any{"module": "memory"}, ""},
	} {
		raw, _ := json.Marshal(map[string]any{
			"admin": map[string]any{"disabled": true},
			"apps": map[string]any{
				"tls_resume": map[string]any{"kek": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "session_store": tc.store},
				"http":       map[string]any{"servers": map[string]any{"srv0": map[string]any{"listen": []string{"127.0.0.1:0"}}}},
			},
		})
		var c caddy.Config
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		err := caddy.Validate(&c)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%v: %v", tc.store, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "session_store") {
			t.Errorf("%v: error %v, want it to contain %q and name session_store", tc.store, err, tc.want)
		}
	}
}
