package docs

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestExtract pins what counts as an example and what is refused.
func TestExtract(t *testing.T) {
	doc := strings.Join([]string{
		"# t",
		"```caddyfile",
		"localhost {",
		"}",
		"```",
		"- item",
		"  ```Caddyfile fragment: a lone site block",
		"  example.com {",
		"  \trespond ok",
		"  }",
		"  ```",
		"~~~json",
		`{"apps": {}}`,
		"~~~",
		"```json not-config: an admin API answer",
		`{"ring": "default"}`,
		"```",
		"```sh",
		"echo hi",
		"cat > Caddyfile <<'EOF'",
		":8080 {",
		"}",
		"EOF",
		"cat > notes.txt <<EOF",
		"not config",
		"EOF",
		"cat >/tmp/caddy.json <<EOF",
		`{"apps": {}}`,
		"EOF",
		"```",
		"```text",
		"just text",
		"```",
		"```",
		"untagged",
		"```",
		"```text",
		"api.example.com, www.example.com:8443 {",
		"```",
		"```go",
		"{",
		"```",
		"```promql",
		`{"apps": {"http": {}}}`,
		"```",
		"```caddyfile fragment:",
		"x",
		"```",
		"```json fragment: x",
		"{}",
		"```",
	}, "\n")
	exs, errs := extract("t.md", doc)
	type got struct {
		line int
		kind kind
		text string
	}
	var gotEx []got
	for _, e := range exs {
		gotEx = append(gotEx, got{e.line, e.kind, e.text})
	}
	want := []got{
		{3, caddyfileWhole, "localhost {\n}\n"},
		{8, caddyfileFragment, "example.com {\n\trespond ok\n}\n"},
		{13, jsonConfig, "{\"apps\": {}}\n"},
		{21, caddyfileWhole, ":8080 {\n}\n"},
		{28, jsonConfig, "{\"apps\": {}}\n"},
	}
	if !reflect.DeepEqual(gotEx, want) {
		t.Errorf("examples:\n got %+v\nwant %+v", gotEx, want)
	}
	wantErrs := []string{
		"t.md:34: fence without an info string",
		"t.md:37: this text block looks like Caddy configuration",
		"t.md:40: this go block looks like Caddy configuration",
		"t.md:43: this promql block looks like Caddy configuration",
		"t.md:46: info string \"caddyfile fragment:\"",
		"t.md:49: a json block can be marked `not-config: <reason>`, not \"fragment\"",
	}
	if len(errs) != len(wantErrs) {
		t.Fatalf("errors: got %d, want %d:\n%v", len(errs), len(wantErrs), errs)
	}
	for i, err := range errs {
		if !strings.HasPrefix(err.Error(), wantErrs[i]) {
			t.Errorf("error %d: %q does not start with %q", i, err, wantErrs[i])
		}
	}
}

// TestChecksCatchBrokenExamples runs the checks of TestDocExamples on broken
// examples: each must fail, for the reason given.
func TestChecksCatchBrokenExamples(t *testing.T) {
	c := newChecker(t)
	site := "localhost:8443 {\n\trespond ok\n}\n"
	cases := []struct {
		name string
		ex   example
		want string
	}{
		{"not formatted", example{kind: caddyfileWhole, text: "{\n\ttls_resume {\n\t\tticket_lifetime   30m\n\t}\n}\n\n" + site},
			"Caddyfile input is not formatted"},
		{"fragment not formatted", example{kind: caddyfileFragment, text: "example.com {\n  respond ok\n}\n"},
			"Caddyfile input is not formatted"},
		{"unknown option", example{kind: caddyfileWhole, text: "{\n\ttls_resume {\n\t\tticket_lifetyme 30m\n\t}\n}\n\n" + site},
			`caddy adapt: exit status 1`},
		{"adapt warning", example{kind: caddyfileWhole, text: "localhost:8443 {\n\treverse_proxy localhost:9000 {\n\t\theader_up X-Forwarded-For {remote_host}\n\t}\n}\n"},
			"caddy adapt warns"},
		{"server that does not exist", example{kind: caddyfileWhole, text: "{\n\ttls_resume {\n\t\tservers srv1\n\t}\n}\n\n" + site},
			`servers: no HTTP server named "srv1"`},
		{"no http app", example{kind: caddyfileWhole, text: "{\n\ttls_resume {\n\t\tservers srv0\n\t}\n}\n"},
			"no http app is configured"},
		{"missing file", example{kind: caddyfileWhole, text: "localhost:8443 {\n\ttls /etc/caddy/site.pem /etc/caddy/site.key\n}\n"},
			"file /etc/caddy/site.pem (add it to suppliedFiles)"},
		{"missing env", example{kind: caddyfileWhole, text: "{\n\ttls_resume {\n\t\tkek {env.OTHER_KEK}\n\t}\n}\n\n" + site},
			"environment variable OTHER_KEK (add it to suppliedEnv)"},
		{"bad KEK", example{kind: jsonConfig, text: `{"apps": {"tls_resume": {"kek": "not a key"}}}`},
			"kek: not standard base64"},
		{"not JSON", example{kind: jsonConfig, text: `{"apps": {}`},
			"caddy validate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.ex.file, tc.ex.line = "broken.md", 1
			err := c.check(t.Context(), t.TempDir(), tc.ex)
			if err == nil {
				t.Fatalf("the check passed a broken example:\n%s", tc.ex.text)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("failed, but not with %q:\n%v", tc.want, err)
			}
		})
	}
	// and good examples pass, with paths rewritten and files supplied, and
	// a Redis session store validates with no Redis listening (its
	// provisioning never waits for a connection)
	mtlsSite := "localhost:8443 {\n\ttls internal {\n\t\tclient_auth {\n\t\t\tmode require_and_verify\n\t\t\ttrust_pool file /etc/caddy/clients-ca.pem\n\t\t}\n\t}\n\trespond ok\n}\n"
	for name, global := range map[string]string{
		"files": "\t\tkek {env.TLS_RESUME_KEK}\n\t\tkek_previous {file./etc/caddy/kek.old}\n\t\tstorage file_system /var/lib/ring\n",
		"redis": "\t\tsession_store redis {\n\t\t\taddress 10.255.255.1:6379\n\t\t}\n",
	} {
		t.Run("good "+name, func(t *testing.T) {
			t.Parallel()
			good := example{file: "good.md", line: 1, kind: caddyfileWhole,
				text: fmt.Sprintf("{\n\ttls_resume {\n%s\t}\n}\n\n%s", global, mtlsSite)}
			if err := c.check(t.Context(), t.TempDir(), good); err != nil {
				t.Errorf("a good example failed: %v", err)
			}
		})
	}
}
