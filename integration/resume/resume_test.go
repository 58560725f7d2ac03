// Package resume tests the tls_resume app end to end: real Caddy (in
// process and as several OS processes sharing storage), openssl s_client and
// Go clients with client certificates.
package resume

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// globals enables tls_resume with a fresh KEK on a fresh storage directory
// (a ring sealed under another test's KEK would, rightly, not be used).
func globals(t testing.TB, extra string) string {
	return fmt.Sprintf("{\n\tstorage file_system %s\n\ttls_resume {\n\t\tkek %s\n%s\t}\n}\n", t.TempDir(), newKEK(t), extra)
}

func newKEK(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// mtlsSite is an mTLS site that echoes who the client is and whether the
// connection resumed.
func mtlsSite(port int, files pki.SetFiles, extraClientAuth string) string {
	return fmt.Sprintf(`https://localhost:%d {
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
%s
		}
	}
	respond "subject={http.request.tls.client.subject} resumed={http.request.tls.resumed} proto={http.request.tls.version}"
}
`, port, files.ServerCert, files.ServerKey, files.CA, extraClientAuth)
}

// TestOpenSSLReused: `openssl s_client -sess_out` then `-sess_in` with a
// client certificate prints "Reused" for TLS 1.2 and TLS 1.3, for ECDSA and
// RSA chains.
func TestOpenSSLReused(t *testing.T) {
	for _, kt := range []pki.KeyType{pki.ECDSAP256, pki.RSA2048} {
		t.Run(kt.String(), func(t *testing.T) {
			set, err := pki.NewSet(kt)
			if err != nil {
				t.Fatal(err)
			}
			files := harness.WritePKI(t, set)
			tester := harness.NewTester(t)
			port := harness.FreePort(t)
			tester.InitServer(globals(t, "")+mtlsSite(port, files, ""), "caddyfile")

			for _, v := range []string{"1.2", "1.3"} {
				first, second, err := harness.SClientResume(context.Background(), t, harness.SClientOptions{
					Addr: harness.Addr(port), CAFile: files.CA,
					CertFile: files.ClientACert, KeyFile: files.ClientAKey, TLSVersion: v,
				})
				if err != nil {
					t.Fatalf("TLS %s: %v", v, err)
				}
				if first.Reused || !second.Reused {
					t.Fatalf("TLS %s: first reused=%v, second reused=%v\n%s", v, first.Reused, second.Reused, second.Output)
				}
				if !strings.Contains(second.Output, "resumed=true") || !strings.Contains(second.Output, "subject=CN=payments-api") {
					t.Fatalf("TLS %s: resumed response lacks the client identity:\n%s", v, second.Output)
				}
			}
		})
	}
}

// TestGoClientResumes: a Go client with a session cache resumes, and the
// resumed connection exposes the same client certificate to handlers.
func TestGoClientResumes(t *testing.T) {
	set, files := harness.NewPKI(t)
	tester := harness.NewTester(t)
	port := harness.FreePort(t)
	tester.InitServer(globals(t, "")+mtlsSite(port, files, ""), "caddyfile")
	ctx := context.Background()
	for _, client := range []*pki.Leaf{set.ClientA, set.ClientB} {
		cfg := harness.ClientConfig(set, client, "localhost")
		var bodies []string
		for i := range 5 {
			resp, err := harness.Get(ctx, harness.Addr(port), cfg, "/")
			if err != nil {
				t.Fatal(err)
			}
			if resp.State.DidResume != (i > 0) {
				t.Fatalf("%s connection %d: resumed=%v", client.Cert.Subject.CommonName, i, resp.State.DidResume)
			}
			bodies = append(bodies, strings.Replace(resp.Body, "resumed=true", "resumed=false", 1))
		}
		for i := 1; i < len(bodies); i++ {
			if bodies[i] != bodies[0] {
				t.Fatalf("resumed connection shows %q, full one %q", bodies[i], bodies[0])
			}
		}
	}
}
