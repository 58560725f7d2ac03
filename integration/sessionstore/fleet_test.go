package sessionstore

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// fleet describes two Caddy processes sharing one ticket-key ring (a fresh
// KEK) and the Redis session store at a test's redis-server.
type fleet struct {
	// poll is the tls_resume poll_interval and max_clock_skew.
	poll string
	// globals are extra global option lines (e.g. a servers block).
	globals string
	// store are the lines of the session_store redis block after address.
	store []string
	// site returns each node's site block.
	site func(harness.NodeInfo) string
}

func (f fleet) start(t *testing.T, srv *testredis.Server) *harness.Cluster {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	storeLines := ""
	for _, l := range f.store {
		storeLines += "\t\t\t" + l + "\n"
	}
	return harness.StartCluster(t, 2, func(n harness.NodeInfo) string {
		return fmt.Sprintf(`{
%s	tls_resume {
		kek {env.TLS_RESUME_KEK}
		poll_interval %s
		max_clock_skew %s
		session_store redis {
			address %s
%s		}
	}
}

`, f.globals, f.poll, f.poll, srv.Addr, storeLines) + f.site(n)
	}, harness.WithEnv("TLS_RESUME_KEK="+base64.StdEncoding.EncodeToString(kek)))
}

// mtlsNameSite is an mTLS site that answers with the node's name.
func mtlsNameSite(files pki.SetFiles) func(harness.NodeInfo) string {
	return func(n harness.NodeInfo) string {
		return strings.TrimLeft(fmt.Sprintf(`
https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
	respond "%s"
}
`, n.Port(), files.ServerCert, files.ServerKey, files.CA, n.Name), "\n")
	}
}
