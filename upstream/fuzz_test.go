package upstream

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzUnmarshalCaddyfile feeds arbitrary Caddyfile text to the transport's
// parser: it must never panic, and whatever it accepts must satisfy the
// session settings' invariants and encode to JSON.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"http_resume",
		"http_resume {\n}",
		"http_resume {\n\tsession_reuse off\n\tsession_cache_size 64\n\tsession_lifetime 10m\n}",
		"http_resume {\n\ttls_client_auth a.pem a.key\n\tsession_cache_size 1\n\ttls_trust_pool file {\n\t\tpem_file ca.pem\n\t}\n\tkeepalive off\n}",
		"http_resume {\n\tsession_lifetime 8d\n}",
		"http_resume {\n\tsession_reuse {\n\t}\n}",
		"http_resume x {\n\tsession_cache_size -1\n}",
		"http_resume {\n\tsession_cache_size 99999999999999999999\n}",
		"http_resume {\n\tnetwork_proxy url http://proxy:3128\n\tsession_reuse\n}",
		"http_resume {\n\t{\n\t}\n}",
		"http_resume {\n\tsession_lifetime\n\t}\n}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		tokens, err := caddyfile.Tokenize([]byte(input), "Caddyfile")
		if err != nil {
			return
		}
		var tr Transport
		if err := tr.UnmarshalCaddyfile(caddyfile.NewDispenser(tokens)); err != nil {
			return
		}
		if tr.SessionCacheSize < 0 {
			t.Fatalf("accepted negative session_cache_size %d", tr.SessionCacheSize)
		}
		if d := time.Duration(tr.SessionLifetime); d < 0 || d > maxSessionLifetime {
			t.Fatalf("accepted session_lifetime %s", d)
		}
		if _, err := json.Marshal(&tr); err != nil {
			t.Fatalf("accepted config does not encode: %v", err)
		}
	})
}
