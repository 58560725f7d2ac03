package upstream

import (
	"testing"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

func TestIdentityDigest(t *testing.T) {
	base := identityInput{
		Protocol:     "tcp",
		ClientChains: [][][]byte{{[]byte("leaf-A"), []byte("intermediate")}},
		Roots:        []byte(`{"ca":{"provider":"file","pem_files":["ca.pem"]}}`),
	}
	same := identityInput{
		Protocol:     "tcp",
		ClientChains: [][][]byte{{[]byte("leaf-A"), []byte("intermediate")}},
		Roots:        []byte(`{"ca":{"provider":"file","pem_files":["ca.pem"]}}`),
	}
	if identityDigest(base) != identityDigest(same) {
		t.Fatal("equal inputs give different digests")
	}
	if len(identityDigest(base)) != 32 {
		t.Fatalf("digest length %d", len(identityDigest(base)))
	}
	// Every change of identity or trust must change the digest.
	variants := map[string]func(*identityInput){
		"protocol":          func(in *identityInput) { in.Protocol = "quic" },
		"insecure":          func(in *identityInput) { in.InsecureSkipVerify = true },
		"other client cert": func(in *identityInput) { in.ClientChains = [][][]byte{{[]byte("leaf-B"), []byte("intermediate")}} },
		"no client cert":    func(in *identityInput) { in.ClientChains = nil },
		"extra chain":       func(in *identityInput) { in.ClientChains = append(in.ClientChains, [][]byte{[]byte("x")}) },
		"chain split differently": func(in *identityInput) {
			in.ClientChains = [][][]byte{{[]byte("leaf-A")}, {[]byte("intermediate")}}
		},
		"bytes moved between certs": func(in *identityInput) {
			in.ClientChains = [][][]byte{{[]byte("leaf-Ai"), []byte("ntermediate")}}
		},
		"automate":     func(in *identityInput) { in.ClientAutomate = "edge.internal" },
		"system roots": func(in *identityInput) { in.Roots = nil },
		"other roots":  func(in *identityInput) { in.Roots = []byte(`{"ca":{"provider":"file","pem_files":["other.pem"]}}`) },
	}
	seen := map[string]string{identityDigest(base): "base"}
	for name, mutate := range variants {
		in := base
		in.ClientChains = append([][][]byte(nil), base.ClientChains...)
		mutate(&in)
		d := identityDigest(in)
		if prev, dup := seen[d]; dup {
			t.Errorf("variant %q has the same digest as %q", name, prev)
		}
		seen[d] = name
	}
}

func TestTrustConfig(t *testing.T) {
	tests := []struct {
		name string
		tc   *reverseproxy.TLSConfig
		want string
	}{
		{"no tls", nil, ""},
		{"system roots", &reverseproxy.TLSConfig{ServerName: "x"}, ""},
		{"ca module compacted", &reverseproxy.TLSConfig{CARaw: []byte("{ \"provider\" : \"file\",\n \"pem_files\": [\"a.pem\"] }")},
			`{"ca":"eyJwcm92aWRlciI6ImZpbGUiLCJwZW1fZmlsZXMiOlsiYS5wZW0iXX0="}`},
		//lint:ignore SA1019 the deprecated fields are still honoured by Caddy
		{"deprecated files", &reverseproxy.TLSConfig{RootCAPEMFiles: []string{"a.pem", "b.pem"}},
			`{"root_ca_pem_files":["a.pem","b.pem"]}`},
		//lint:ignore SA1019 the deprecated fields are still honoured by Caddy
		{"deprecated pool", &reverseproxy.TLSConfig{RootCAPool: []string{"TUlJQg=="}},
			`{"root_ca_pool":["TUlJQg=="]}`},
		{"invalid json kept raw", &reverseproxy.TLSConfig{CARaw: []byte("{not json")},
			`{"ca":"e25vdCBqc29u"}`},
	}
	for _, tc := range tests {
		if got := string(trustConfig(tc.tc)); got != tc.want {
			t.Errorf("%s: trustConfig = %s, want %s", tc.name, got, tc.want)
		}
	}
	// Formatting differences do not split the cache.
	a := trustConfig(&reverseproxy.TLSConfig{CARaw: []byte(`{"provider":"file","pem_files":["a.pem"]}`)})
	b := trustConfig(&reverseproxy.TLSConfig{CARaw: []byte("{\n\t\"provider\": \"file\", \"pem_files\": [ \"a.pem\" ]\n}")})
	if string(a) != string(b) {
		t.Errorf("formatting changed the trust config: %s vs %s", a, b)
	}
}
