package probe

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

var line = regexp.MustCompile(`(?m)^(\d+)  (full|resumed|error)\s+(.*)$`)

func TestProbeWithAndWithoutTLSResume(t *testing.T) {
	_, files := harness.NewPKI(t)
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	// node0 runs the tls_resume app; node1 is stock Caddy behaviour (the
	// same binary without the app), which turns tickets off on mTLS sites.
	c := harness.StartCluster(t, 2, func(n harness.NodeInfo) string {
		global := ""
		if n.Index == 0 {
			// early_data replayable: stateless tickets carry no 0-RTT
			// by default, and the h3 probe checks that early data is
			// accepted on resumed connections.
			global = "{\n\ttls_resume {\n\t\tkek {env.TLS_RESUME_KEK}\n\t\tearly_data replayable\n\t}\n}\n\n"
		}
		return global + fmt.Sprintf(`https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	respond "ok"
}
`, n.Port(), files.ServerCert, files.ServerKey, files.CA)
	}, harness.WithEnv("TLS_RESUME_KEK="+base64.StdEncoding.EncodeToString(kek)))
	bin := harness.BuildCaddy(t)

	for _, proto := range []string{"1.2", "1.3", "h3"} {
		for _, n := range c.Nodes {
			withApp := n.Index == 0
			t.Run(fmt.Sprintf("%s/tls_resume=%v", proto, withApp), func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, "tls-resume", "probe", "--count", "3", "--tls", proto,
					"--servername", "localhost", "--cert", files.ClientACert, "--key", files.ClientAKey,
					"--ca", files.CA, n.Addr())
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("probe: %v\n%s", err, out)
				}
				m := line.FindAllStringSubmatch(string(out), -1)
				if len(m) != 3 {
					t.Fatalf("want 3 handshake lines:\n%s", out)
				}
				want := []string{"full", "full", "full"}
				if withApp {
					want = []string{"full", "resumed", "resumed"}
				}
				version := "TLS " + proto
				if proto == "h3" {
					version = "h3 (TLS 1.3)"
				}
				for i, l := range m {
					if l[1] != fmt.Sprint(i+1) || l[2] != want[i] || !strings.Contains(l[3], version) || !strings.Contains(l[3], "HTTP 200") {
						t.Errorf("line %d: %q; want %s over %s with HTTP 200\n%s", i+1, l[0], want[i], version, out)
					}
					if proto == "h3" {
						// A resumed QUIC session sends HEAD / as 0-RTT
						// and Caddy accepts it; a full one cannot.
						early := "early data: no"
						if want[i] == "resumed" {
							early = "early data: accepted"
						}
						if !strings.HasSuffix(l[3], early) {
							t.Errorf("line %d: %q; want %q", i+1, l[0], early)
						}
					}
				}
				t.Logf("%s", out)
			})
		}
	}

	// A connection error makes the command fail.
	cmd := exec.Command(bin, "tls-resume", "probe", "--count", "1", "--tls", "1.3",
		"--servername", "localhost", "--ca", files.CA, c.Node(0).Addr())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "1  error") {
		t.Errorf("probe without a client certificate: %v\n%s", err, out)
	}
}
