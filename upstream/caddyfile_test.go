package upstream

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// parseTransport runs UnmarshalCaddyfile on input and returns the transport
// as JSON (decoded into a generic value for comparison).
func parseTransport(input string) (any, error) {
	tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
	if err != nil {
		return nil, err
	}
	var tr Transport
	if err := tr.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(&tr)
	if err != nil {
		return nil, err
	}
	var v any
	return v, json.Unmarshal(raw, &v)
}

func jsonValue(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("bad expected JSON %s: %v", s, err)
	}
	return v
}

func TestUnmarshalCaddyfile(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"bare", `http_resume`, `{}`},
		{"empty block", `http_resume {
		}`, `{}`},
		{"only session options", `http_resume {
			session_reuse off
			session_cache_size 64
			session_lifetime 10m
		}`, `{"session_reuse":false,"session_cache_size":64,"session_lifetime":600000000000}`},
		{"session_reuse without argument means on", `http_resume {
			session_reuse
		}`, `{"session_reuse":true}`},
		{"session_reuse on", `http_resume {
			session_reuse on
		}`, `{"session_reuse":true}`},
		{"inherited options interleaved with ours, nested blocks kept", `http_resume {
			tls_client_auth /etc/caddy/edge.pem /etc/caddy/edge.key
			session_cache_size 10
			tls_trust_pool file {
				pem_file /etc/caddy/ca.pem
			}
			keepalive off
			session_lifetime 90s
			tls_server_name backend.internal
			versions 1.1 2
			dial_timeout 2s
		}`, `{
			"tls": {
				"ca": {"provider": "file", "pem_files": ["/etc/caddy/ca.pem"]},
				"client_certificate_file": "/etc/caddy/edge.pem",
				"client_certificate_key_file": "/etc/caddy/edge.key",
				"server_name": "backend.internal"
			},
			"keep_alive": {"enabled": false},
			"versions": ["1.1", "2"],
			"dial_timeout": 2000000000,
			"session_cache_size": 10,
			"session_lifetime": 90000000000
		}`},
		{"full_handshake_every", `http_resume {
			full_handshake_every 5m
		}`, `{"full_handshake_every":300000000000}`},
		{"inherited only", `http_resume {
			tls_insecure_skip_verify
			max_conns_per_host 4
		}`, `{"tls":{"insecure_skip_verify":true},"max_conns_per_host":4}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTransport(tc.input)
			if err != nil {
				t.Fatal(err)
			}
			if want := jsonValue(t, tc.want); !reflect.DeepEqual(got, want) {
				g, _ := json.Marshal(got)
				t.Errorf("got  %s\nwant %s", g, tc.want)
			}
		})
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		// Caddy's own message, with the line of the offending token.
		{"unknown option", "http_resume {\n\tkeepalive off\n\tbogus 1\n}", "unrecognized subdirective bogus, at Caddyfile:3"},
		{"caddy's argument check", "http_resume {\n\tdial_timeout\n}", "wrong argument count"},
		{"caddy's value check", "http_resume {\n\tdial_timeout forever\n}", "bad timeout value 'forever'"},
		{"argument on the transport", "http_resume extra {\n}", "transport http_resume takes no arguments, got 'extra'"},
		{"size zero", "http_resume {\n\tsession_cache_size 0\n}", "session_cache_size: invalid number of sessions '0'"},
		{"size negative", "http_resume {\n\tsession_cache_size -5\n}", "session_cache_size: invalid number of sessions '-5'"},
		{"size not a number", "http_resume {\n\tsession_cache_size lots\n}", "session_cache_size: invalid number of sessions 'lots' (must be a positive integer; use 'session_reuse off' to disable), at Caddyfile:2"},
		{"size missing", "http_resume {\n\tsession_cache_size\n}", "session_cache_size: expected one number of sessions, got 0 arguments"},
		{"size twice", "http_resume {\n\tsession_cache_size 1\n\tsession_cache_size 2\n}", "session_cache_size already specified, at Caddyfile:3"},
		{"lifetime junk", "http_resume {\n\tsession_lifetime later\n}", "session_lifetime: invalid duration 'later'"},
		{"lifetime zero", "http_resume {\n\tsession_lifetime 0s\n}", "session_lifetime: '0s' out of range"},
		{"lifetime negative", "http_resume {\n\tsession_lifetime -1m\n}", "session_lifetime: '-1m' out of range"},
		{"lifetime too long", "http_resume {\n\tsession_lifetime 8d\n}", "session_lifetime: '8d' out of range"},
		{"lifetime two values", "http_resume {\n\tsession_lifetime 1m 2m\n}", "session_lifetime: expected one duration, got 2 arguments"},
		{"reuse bad value", "http_resume {\n\tsession_reuse maybe\n}", `session_reuse: expected 'on' or 'off', got ["maybe"]`},
		{"full handshake junk", "http_resume {\n\tfull_handshake_every often\n}", "full_handshake_every: invalid duration 'often'"},
		{"full handshake too short", "http_resume {\n\tfull_handshake_every 500ms\n}", "full_handshake_every: '500ms' is shorter than the 1s minimum"},
		{"full handshake negative", "http_resume {\n\tfull_handshake_every -5m\n}", "full_handshake_every: '-5m' is shorter than the 1s minimum"},
		{"full handshake missing", "http_resume {\n\tfull_handshake_every\n}", "full_handshake_every: expected one duration, got 0 arguments"},
		{"full handshake twice", "http_resume {\n\tfull_handshake_every 1m\n\tfull_handshake_every 2m\n}", "full_handshake_every already specified, at Caddyfile:3"},
		{"reuse block", "http_resume {\n\tsession_reuse {\n\t\ton\n\t}\n}", "session_reuse takes no block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseTransport(tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestAdaptRoundTrip adapts a Caddyfile using the transport the way users
// write it, checks the JSON Caddy produces, decodes it back strictly, and
// validates (provisions) the whole config.
func TestAdaptRoundTrip(t *testing.T) {
	p := getPKI(t)
	caddyfileText := `{
	admin off
	persist_config off
}

:0 {
	reverse_proxy https://127.0.0.1:9443 {
		transport http_resume {
			tls_client_auth ` + p.files.ClientACert + ` ` + p.files.ClientAKey + `
			tls_trust_pool file ` + p.files.CA + `
			tls_server_name backend.internal
			keepalive off
			session_cache_size 64
			session_lifetime 10m
			session_reuse on
			full_handshake_every 5m
		}
	}
}
`
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, warnings, err := adapter.Adapt([]byte(caddyfileText), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings: %v", warnings)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []map[string]json.RawMessage `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	var transportJSON json.RawMessage
	for _, srv := range cfg.Apps.HTTP.Servers {
		for _, r := range srv.Routes {
			for _, h := range r.Handle {
				if string(h["handler"]) == `"reverse_proxy"` {
					transportJSON = h["transport"]
				}
			}
		}
	}
	if transportJSON == nil {
		t.Fatalf("no reverse_proxy transport in %s", out)
	}
	want := `{
		"protocol": "http_resume",
		"tls": {
			"ca": {"provider": "file", "pem_files": ["` + p.files.CA + `"]},
			"client_certificate_file": "` + p.files.ClientACert + `",
			"client_certificate_key_file": "` + p.files.ClientAKey + `",
			"server_name": "backend.internal"
		},
		"keep_alive": {"enabled": false},
		"session_reuse": true,
		"session_cache_size": 64,
		"session_lifetime": 600000000000,
		"full_handshake_every": 300000000000
	}`
	var got any
	if err := json.Unmarshal(transportJSON, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, jsonValue(t, want)) {
		t.Fatalf("adapted transport:\n%s\nwant\n%s", transportJSON, want)
	}

	// Strict decode back into the module and re-encode: same JSON.
	m := got.(map[string]any)
	delete(m, "protocol")
	raw, _ := json.Marshal(m)
	tr, err := loadTransport(t, raw)
	if err != nil {
		t.Fatalf("adapted JSON does not load: %v", err)
	}
	if !tr.TLSEnabled() || tr.SessionCacheSize != 64 || time.Duration(tr.FullHandshakeEvery) != 5*time.Minute {
		t.Errorf("loaded transport: tls %v size %d full_handshake_every %s", tr.TLSEnabled(), tr.SessionCacheSize, time.Duration(tr.FullHandshakeEvery))
	}
	if again, _ := json.Marshal(tr); !strings.Contains(string(again), `"full_handshake_every":300000000000`) {
		t.Errorf("re-encoded transport lost full_handshake_every: %s", again)
	}

	// The whole adapted config provisions.
	var full caddy.Config
	if err := json.Unmarshal(out, &full); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&full); err != nil {
		t.Fatalf("adapted config does not validate: %v", err)
	}
}

// TestAdaptEnablesTLS: an https:// upstream with the transport and no tls
// option gets TLS enabled by reverse_proxy (through the embedded
// EnableTLS), exactly as with `transport http`.
func TestAdaptEnablesTLS(t *testing.T) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	out, _, err := adapter.Adapt([]byte(`:0 {
	reverse_proxy https://backend.internal {
		transport http_resume {
			session_cache_size 8
		}
	}
}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"transport":{"protocol":"http_resume","session_cache_size":8,"tls":{}}`) {
		t.Fatalf("TLS not enabled for an https upstream: %s", out)
	}
	// An http:// upstream with TLS options is refused, as Caddy does.
	_, _, err = adapter.Adapt([]byte(`:0 {
	reverse_proxy http://backend.internal {
		transport http_resume {
			tls
		}
	}
}`), nil)
	if err == nil || !strings.Contains(err.Error(), "upstream address scheme is HTTP but transport is configured for HTTP+TLS") {
		t.Fatalf("error %v", err)
	}
	// Unknown options inside the transport fail adaptation with Caddy's message.
	_, _, err = adapter.Adapt([]byte(`:0 {
	reverse_proxy https://backend.internal {
		transport http_resume {
			session_reuse off
			tls_bogus
		}
	}
}`), nil)
	if err == nil || !strings.Contains(err.Error(), "unrecognized subdirective tls_bogus") {
		t.Fatalf("error %v", err)
	}
}
