package earlydata

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  string // JSON of the resulting Guard
	}{
		{"bare directive", `early_data_guard`, `{}`},
		{"empty block", "early_data_guard {\n}", `{}`},
		{"methods", "early_data_guard {\n methods get HEAD\n}", `{"methods":["GET","HEAD"]}`},
		{"methods repeated add up", "early_data_guard {\n methods GET\n methods OPTIONS\n}", `{"methods":["GET","OPTIONS"]}`},
		{"refuse path token", "early_data_guard {\n refuse /logout\n}", `{"refuse":[{"path":["/logout"]}]}`},
		{"refuse everything", "early_data_guard {\n refuse *\n}", `{"refuse":[{}]}`},
		{"refuse inline on one line", "early_data_guard {\n refuse path /logout /bye\n}", `{"refuse":[{"path":["/logout","/bye"]}]}`},
		{
			"allow inline block",
			"early_data_guard {\n allow {\n  method PUT\n  path /idem/*\n }\n}",
			`{"allow":[{"method":["PUT"],"path":["/idem/*"]}]}`,
		},
		{
			"several sets",
			"early_data_guard {\n refuse /a\n refuse method GET\n allow /b\n}",
			`{"refuse":[{"path":["/a"]},{"method":["GET"]}],"allow":[{"path":["/b"]}]}`,
		},
		{
			"expression shorthand",
			"early_data_guard {\n refuse `{path} == '/x'`\n}",
			`{"refuse":[{"expression":"{path} == '/x'"}]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Guard
			if err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input)); err != nil {
				t.Fatalf("UnmarshalCaddyfile: %v", err)
			}
			got, err := json.Marshal(g)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, got, []byte(tc.want)) {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			// What the Caddyfile produced must provision.
			provision(t, &g)
		})
	}
}

func TestUnmarshalCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, input, wantErr string
	}{
		{"unknown subdirective", "early_data_guard {\n methds GET\n}", `unrecognized subdirective "methds"`},
		{"empty method list", "early_data_guard {\n methods\n}", "methods: at least one HTTP method is required"},
		{"invalid method", "early_data_guard {\n methods GET P/OST\n}", `methods: "P/OST" is not a valid HTTP method`},
		{"block after methods", "early_data_guard {\n methods GET {\n x\n }\n}", "methods: unexpected block"},
		{"argument on directive", "early_data_guard POST", `unexpected argument "POST"`},
		{"unknown matcher", "early_data_guard {\n refuse nosuchmatcher /x\n}", "refuse: getting matcher module 'nosuchmatcher'"},
		{"unknown matcher in block", "early_data_guard {\n allow {\n  nosuch x\n }\n}", "allow: getting matcher module 'nosuch'"},
		{"bad matcher arguments", "early_data_guard {\n refuse header\n}", "refuse: malformed header matcher: expected field"},
		{"missing matcher", "early_data_guard {\n refuse\n}", "refuse: a matcher is required"},
		{"empty matcher block", "early_data_guard {\n allow {\n }\n}", "allow: a matcher is required"},
		{"extra argument after token", "early_data_guard {\n refuse /a /b\n}", `refuse: unexpected argument "/b" after matcher "/a"`},
		{"block after token", "early_data_guard {\n allow /a {\n  method GET\n }\n}", `allow: unexpected block after matcher "/a"`},
		{"named matcher without adapter", "early_data_guard {\n refuse @logout\n}", "named matcher @logout can only be resolved by the HTTP Caddyfile adapter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var g Guard
			err := g.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func jsonEqual(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}
