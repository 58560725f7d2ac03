package caddyfile

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// adapt runs the Caddyfile adapter exactly as `caddy adapt` does.
func adapt(t *testing.T, input string) ([]byte, error) {
	t.Helper()
	adapter := caddyconfig.GetAdapter("caddyfile")
	if adapter == nil {
		t.Fatal("caddyfile adapter not registered")
	}
	out, warnings, err := adapter.Adapt([]byte(input), nil)
	for _, w := range warnings {
		t.Logf("adapt warning: %s", w.String())
	}
	return out, err
}

// TestEarlyDataGuardAdapt adapts a site using every form of the directive and
// compares the whole JSON, which shows the guard's place in the handler
// order (after header, wrapped by log_append, before everything that acts
// on a request) and how its matcher tokens resolve.
func TestEarlyDataGuardAdapt(t *testing.T) {
	const input = `example.com {
	@logout path /logout /session/end
	@idempotent {
		method PUT
		path /idem/*
	}
	reverse_proxy localhost:9000
	request_body {
		max_size 1MB
	}
	redir /old /new
	header X-Frame-Options DENY
	log_append early_data {http.vars.early_data}
	early_data_guard {
		methods get HEAD
		refuse @logout
		refuse /admin/*
		refuse header X-Side-Effect *
		allow @idempotent
		allow {
			method PATCH
			path /counters/*
		}
	}
}
`
	const want = `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [":443"],
					"routes": [{
						"match": [{"host": ["example.com"]}],
						"handle": [{
							"handler": "subroute",
							"routes": [
								{"handle": [
									{"handler": "log_append", "key": "early_data", "value": "{http.vars.early_data}"},
									{"handler": "headers", "response": {"set": {"X-Frame-Options": ["DENY"]}}},
									{
										"handler": "early_data_guard",
										"methods": ["GET", "HEAD"],
										"refuse": [
											{"path": ["/logout", "/session/end"]},
											{"path": ["/admin/*"]},
											{"header": {"X-Side-Effect": ["*"]}}
										],
										"allow": [
											{"method": ["PUT"], "path": ["/idem/*"]},
											{"method": ["PATCH"], "path": ["/counters/*"]}
										]
									},
									{"handler": "request_body", "max_size": 1000000}
								]},
								{"handle": [{"handler": "static_response", "headers": {"Location": ["/new"]}, "status_code": 302}], "match": [{"path": ["/old"]}]},
								{"handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": "localhost:9000"}]}]}
							]
						}],
						"terminal": true
					}]
				}
			}
		}
	}
}`
	got, err := adapt(t, input)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	assertJSON(t, got, want)
	validate(t, got)
}

// TestEarlyDataGuardAdaptDirectiveMatcher checks the directive's own matcher
// and the bare form. (Routes of one directive are sorted by path
// specificity, as for every directive, hence /upload/* first.)
func TestEarlyDataGuardAdaptDirectiveMatcher(t *testing.T) {
	const input = `:8443 {
	@api path /api/*
	early_data_guard @api
	early_data_guard /upload/* {
		refuse *
	}
	respond "ok"
}
`
	const want = `{
	"apps": {
		"http": {
			"servers": {
				"srv0": {
					"listen": [":8443"],
					"routes": [
						{"match": [{"path": ["/upload/*"]}], "handle": [{"handler": "early_data_guard", "refuse": [{}]}]},
						{"match": [{"path": ["/api/*"]}], "handle": [{"handler": "early_data_guard"}]},
						{"handle": [{"handler": "static_response", "body": "ok"}]}
					]
				}
			}
		}
	}
}`
	got, err := adapt(t, input)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	assertJSON(t, got, want)
	validate(t, got)
}

func TestEarlyDataGuardAdaptErrors(t *testing.T) {
	for _, tc := range []struct {
		name, guard, wantErr string
	}{
		{"unknown subdirective", "early_data_guard {\n\t\tmethod GET\n\t}", `unrecognized subdirective "method"`},
		{"empty method list", "early_data_guard {\n\t\tmethods\n\t}", "methods: at least one HTTP method is required"},
		{"invalid method", "early_data_guard {\n\t\tmethods GET,HEAD\n\t}", `methods: "GET,HEAD" is not a valid HTTP method`},
		{"undefined named matcher", "early_data_guard {\n\t\trefuse @nope\n\t}", "refuse: unrecognized matcher name: @nope"},
		{"unknown matcher module", "early_data_guard {\n\t\tallow nosuch /x\n\t}", "allow: getting matcher module 'nosuch'"},
		{"malformed matcher", "early_data_guard {\n\t\trefuse header\n\t}", "malformed header matcher"},
		{"missing matcher", "early_data_guard {\n\t\tallow\n\t}", "allow: a matcher is required"},
		{"argument", "early_data_guard @api POST", `unexpected argument "POST"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			input := ":8443 {\n\t@api path /api/*\n\t" + tc.guard + "\n\trespond ok\n}\n"
			_, err := adapt(t, input)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("adapt error = %v, want it to contain %q", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), "Caddyfile:") {
				t.Errorf("error %q does not name the file and line", err)
			}
		})
	}
}

// TestEarlyDataGuardJSONErrors checks that JSON mistakes (which no Caddyfile
// can produce) fail at provisioning, naming the option.
func TestEarlyDataGuardJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name, handler, wantErr string
	}{
		{"empty methods", `{"handler": "early_data_guard", "methods": []}`, "methods: the list is empty"},
		{"invalid method", `{"handler": "early_data_guard", "methods": ["G ET"]}`, `methods: "G ET" is not a valid HTTP method`},
		{"bad matcher", `{"handler": "early_data_guard", "refuse": [{"remote_ip": {"ranges": ["not-an-ip"]}}]}`, "refuse"},
		{"unknown matcher", `{"handler": "early_data_guard", "allow": [{"nosuch": {}}]}`, "allow: loading matchers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := `{"admin": {"disabled": true}, "apps": {"http": {"servers": {"s": {"listen": [":8443"], "routes": [{"handle": [` + tc.handler + `]}]}}}}}`
			var c caddy.Config
			if err := json.Unmarshal([]byte(cfg), &c); err != nil {
				t.Fatal(err)
			}
			err := caddy.Validate(&c)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// validate provisions an adapted config without starting it, as `caddy
// validate` does.
func validate(t *testing.T, cfgJSON []byte) {
	t.Helper()
	var c caddy.Config
	if err := json.Unmarshal(cfgJSON, &c); err != nil {
		t.Fatal(err)
	}
	if c.Admin == nil {
		c.Admin = &caddy.AdminConfig{}
	}
	c.Admin.Disabled = true
	if err := caddy.Validate(&c); err != nil {
		t.Fatalf("adapted config does not provision: %v", err)
	}
}

func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("adapted JSON: %v", err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("expected JSON: %v", err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, got, "", "  ")
		t.Fatalf("adapted JSON differs\n got: %s\nwant: %s\npretty got:\n%s", gb, wb, pretty.String())
	}
}
