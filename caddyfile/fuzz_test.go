package caddyfile

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/tlsresume/caddy-tlsresume/tlsresume"
)

// FuzzTLSResumeGlobalOption feeds arbitrary text to the tls_resume global
// option's parser (with its session_store and storage sub-blocks): an
// error or an app, never a panic, and an app that it returns is JSON that
// decodes back into the app.
func FuzzTLSResumeGlobalOption(f *testing.F) {
	for _, seed := range []string{
		"tls_resume",
		"tls_resume {\n kek {env.K}\n kek_previous a b\n rotation_interval 6h\n ticket_lifetime 20m\n poll_interval 30s\n max_clock_skew 10s\n servers a b\n resume_across_hosts\n ring_name edge\n storage file_system /x\n}",
		"tls_resume {\n early_data once\n session_store redis {\n address 127.0.0.1:6379\n }\n}",
		"tls_resume {\n early_data replayable\n session_store memory\n}",
		"tls_resume {\n session_store redis {\n address a:1 b:2\n master_name m\n tls\n }\n early_data off\n}",
		"tls_resume {\n kek\n}",
		"tls_resume x",
		"tls_resume {\n rotation_interval -1s\n}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil || len(tokens) == 0 || tokens[0].Text != "tls_resume" {
			return
		}
		v, err := parseTLSResume(caddyfile.NewDispenser(tokens), nil)
		if err != nil {
			return
		}
		app, ok := v.(httpcaddyfile.App)
		if !ok {
			t.Fatalf("parser returned %T", v)
		}
		var back tlsresume.App
		if err := json.Unmarshal(app.Value, &back); err != nil {
			t.Fatalf("adapted app %s does not decode: %v", app.Value, err)
		}
	})
}
