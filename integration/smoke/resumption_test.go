package smoke

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestClientsDetectResumption checks both client helpers against stock
// Caddy: a TLS site without client authentication resumes sessions (Caddy's
// own session tickets), a stock mTLS site never does (Caddy disables tickets
// when client authentication is on - the gap this plugin closes). So each
// helper must report both outcomes correctly.
func TestClientsDetectResumption(t *testing.T) {
	set, files := harness.NewPKI(t)
	tester := harness.NewTester(t)
	tlsPort, mtlsPort := harness.FreePort(t), harness.FreePort(t)
	tester.InitServer(fmt.Sprintf(`https://localhost:%d {
	tls %s %s
	respond "resumed={http.request.tls.resumed}"
}
`, tlsPort, files.ServerCert, files.ServerKey)+mtlsSite(mtlsPort, files), "caddyfile")
	ctx := context.Background()

	versions := map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}
	for name, v := range versions {
		t.Run("go/tls"+name, func(t *testing.T) {
			// plain TLS: the second handshake resumes
			cfg := harness.ClientConfig(set, nil, "localhost")
			cfg.MinVersion, cfg.MaxVersion = v, v
			addr := harness.Addr(tlsPort)
			first, err := harness.Handshake(ctx, addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			second, err := harness.Handshake(ctx, addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if first.DidResume || !second.DidResume || second.Version != v {
				t.Errorf("plain TLS: first resumed=%v, second resumed=%v (version %#x)", first.DidResume, second.DidResume, second.Version)
			}
			// Get reports the same, and the server agrees
			resp, err := harness.Get(ctx, addr, cfg, "/")
			if err != nil {
				t.Fatal(err)
			}
			if !resp.State.DidResume || resp.Body != "resumed=true" {
				t.Errorf("Get: resumed=%v body %q", resp.State.DidResume, resp.Body)
			}

			// stock mTLS: admitted every time, never resumed
			mcfg := harness.ClientConfig(set, set.ClientA, "localhost")
			mcfg.MinVersion, mcfg.MaxVersion = v, v
			for i := 0; i < 2; i++ {
				st, err := harness.Handshake(ctx, harness.Addr(mtlsPort), mcfg)
				if err != nil {
					t.Fatal(err)
				}
				if st.DidResume {
					t.Errorf("stock Caddy resumed an mTLS session (handshake %d)", i+1)
				}
			}
		})
		t.Run("openssl/tls"+name, func(t *testing.T) {
			first, second, err := harness.SClientResume(ctx, t, harness.SClientOptions{
				Addr: harness.Addr(tlsPort), CAFile: files.CA, TLSVersion: name,
			})
			if err != nil {
				t.Fatal(err)
			}
			if first.Reused || !second.Reused || second.Protocol != "TLSv"+name || !second.VerifyOK {
				t.Errorf("plain TLS: first reused=%v, second reused=%v protocol %s verify %v\n%s", first.Reused, second.Reused, second.Protocol, second.VerifyOK, second.Output)
			}
			if !strings.Contains(second.Output, "resumed=true") {
				t.Errorf("server did not see the resumption:\n%s", second.Output)
			}

			first, second, err = harness.SClientResume(ctx, t, harness.SClientOptions{
				Addr: harness.Addr(mtlsPort), CAFile: files.CA, TLSVersion: name,
				CertFile: files.ClientACert, KeyFile: files.ClientAKey,
			})
			if err != nil && strings.Contains(err.Error(), "saved no session") &&
				strings.Contains(first.Output, "hello CN=payments-api") {
				return // admitted, but no ticket or session ID at all: stock mTLS
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(first.Output, "hello CN=payments-api") {
				t.Errorf("mTLS request not answered:\n%s", first.Output)
			}
			if second.Reused {
				t.Errorf("stock Caddy resumed an mTLS session with openssl:\n%s", second.Output)
			}
		})
	}
}

func TestOpenSSLReportsRefusal(t *testing.T) {
	_, files := harness.NewPKI(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	tester.InitServer(mtlsSite(port, files), "caddyfile")
	res, err := harness.SClient(context.Background(), harness.SClientOptions{
		Addr: harness.Addr(port), CAFile: files.CA, TLSVersion: "1.2",
	})
	if err == nil {
		t.Fatalf("s_client without a client certificate succeeded:\n%s", res.Output)
	}
}
