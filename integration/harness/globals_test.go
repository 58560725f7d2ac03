package harness

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestAddGlobalOptions(t *testing.T) {
	for _, c := range []struct {
		name, in string
		opts     []string
		want     string
	}{
		{
			name: "no global block",
			in:   "localhost {\n\trespond ok\n}\n",
			opts: []string{"admin localhost:1", "skip_install_trust"},
			want: "{\n\tadmin localhost:1\n\tskip_install_trust\n}\n\nlocalhost {\n\trespond ok\n}\n",
		},
		{
			name: "existing block keeps its options",
			in:   "# comment\n{\n\tadmin localhost:1\n\ttls_resume {\n\t\tkek x\n\t}\n}\n\n:80 {\n}\n",
			opts: []string{"admin localhost:2", "http_port 9"},
			want: "# comment\n{\n\thttp_port 9\n\tadmin localhost:1\n\ttls_resume {\n\t\tkek x\n\t}\n}\n\n:80 {\n}\n",
		},
		{
			name: "nothing to add",
			in:   "{\n\tadmin localhost:1\n}\n",
			opts: []string{"admin localhost:2"},
			want: "{\n\tadmin localhost:1\n}\n",
		},
		{
			name: "global block only, no trailing newline",
			in:   "{\n\tdebug\n}",
			opts: []string{"persist_config off"},
			want: "{\n\tpersist_config off\n\tdebug\n}",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := AddGlobalOptions(c.in, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
			if _, err := GlobalOptions(got); err != nil {
				t.Errorf("result does not parse: %v", err)
			}
		})
	}
}

func TestAddGlobalOptionsNeedsBraceAlone(t *testing.T) {
	if _, err := AddGlobalOptions("{ debug\n}\n", "admin localhost:1"); err == nil || !strings.Contains(err.Error(), "must end its line") {
		t.Fatalf("err = %v", err)
	}
}

func TestGlobalOptions(t *testing.T) {
	got, err := GlobalOptions("{\n\tadmin 127.0.0.1:5 {\n\t\torigins x\n\t}\n\tstorage file_system \"/a b\"\n\tdebug\n}\nlocalhost {\n\trespond hi\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"admin":   {"127.0.0.1:5"},
		"storage": {"file_system", "/a b"},
		"debug":   nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v, want %#v", got, want)
	}
	none, err := GlobalOptions("localhost {\n\trespond hi\n}\n")
	if err != nil || len(none) != 0 {
		t.Errorf("site-only Caddyfile: %v, %v", none, err)
	}
}

func TestSetJSONDefaults(t *testing.T) {
	in := `{"apps":{"http":{"servers":{"s":{"listen":[":1"]}}}}}`
	out, listen, err := setJSONDefaults(in, jsonDefaults{adminListen: "127.0.0.1:7", noPersist: true, storageRoot: "/st", httpPort: 8, httpsPort: 9})
	if err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1:7" {
		t.Errorf("listen = %q", listen)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"admin":   map[string]any{"listen": "127.0.0.1:7", "config": map[string]any{"persist": false}},
		"storage": map[string]any{"module": "file_system", "root": "/st"},
		"apps": map[string]any{"http": map[string]any{
			"http_port": 8.0, "https_port": 9.0,
			"servers": map[string]any{"s": map[string]any{"listen": []any{":1"}}},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %s", out)
	}

	// values the config sets are kept
	_, listen, err = setJSONDefaults(`{"admin":{"listen":"localhost:3"}}`, jsonDefaults{adminListen: "127.0.0.1:7"})
	if err != nil || listen != "localhost:3" {
		t.Errorf("listen = %q, %v", listen, err)
	}
	if _, _, err := setJSONDefaults(`[1]`, jsonDefaults{}); err == nil {
		t.Error("a JSON array was accepted as a config")
	}
}

func TestCaddytestMangledPaths(t *testing.T) {
	for path, mangled := range map[string]bool{
		"/tmp/x/server.key":       true,
		"/tmp/x/server.crt":       true,
		"/tmp/x/server.key.pem":   true,
		"/tmp/x/server-key.pem":   false,
		"/tmp/x/client-a.pem":     false,
		"/tmp/x/client_a_key.pem": false,
	} {
		if got := caddytestMangled.MatchString(path); got != mangled {
			t.Errorf("%s: mangled = %v, want %v", path, got, mangled)
		}
	}
}
