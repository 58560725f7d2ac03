package harness

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// WritePKI writes set as PEM files into a new temporary directory and
// returns their paths. Unlike pki.Set.WriteFiles it names keys NAME-key.pem
// (ca.pem, server.pem, server-key.pem, client-a.pem, client-a-key.pem,
// client-b.pem, client-b-key.pem), because caddytest rewrites every path
// ending in /NAME.key or /NAME.crt in the configs it loads.
func WritePKI(t testing.TB, set *pki.Set) pki.SetFiles {
	t.Helper()
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatalf("harness: writing %s: %v", p, err)
		}
		return p
	}
	return pki.SetFiles{
		CA:          write("ca.pem", set.Root.CertPEM(), 0o644),
		ServerCert:  write("server.pem", set.Server.CertPEM(), 0o644),
		ServerKey:   write("server-key.pem", set.Server.KeyPEM(), 0o600),
		ClientACert: write("client-a.pem", set.ClientA.CertPEM(), 0o644),
		ClientAKey:  write("client-a-key.pem", set.ClientA.KeyPEM(), 0o600),
		ClientBCert: write("client-b.pem", set.ClientB.CertPEM(), 0o644),
		ClientBKey:  write("client-b-key.pem", set.ClientB.KeyPEM(), 0o600),
	}
}

// NewPKI generates an ECDSA pki.Set (server names localhost, 127.0.0.1, ::1
// plus extraServerNames) and writes it with WritePKI.
func NewPKI(t testing.TB, extraServerNames ...string) (*pki.Set, pki.SetFiles) {
	t.Helper()
	set, err := pki.NewSet(pki.ECDSAP256, extraServerNames...)
	if err != nil {
		t.Fatalf("harness: generating PKI: %v", err)
	}
	return set, WritePKI(t, set)
}
