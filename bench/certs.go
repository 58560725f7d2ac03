package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// chain is one certificate hierarchy every server is given: root →
// intermediate → server leaf, and a client leaf from the same intermediate.
// Servers send leaf + intermediate and require a client certificate that
// chains to the root.
type chain struct {
	// name is how reports call the key type ("ECDSA P-256", "RSA-2048").
	name string
	// slug names it in flags and file names ("ecdsa", "rsa").
	slug string
	set  *pki.Set
	// files on disk for the servers' configs.
	ca, serverCert, serverKey string
	// serverPEM is leaf, intermediate and key in one file (HAProxy's crt).
	serverPEM string
	// client is the client certificate the load generator presents.
	client tls.Certificate
	roots  *x509.CertPool
}

// newChains generates the ECDSA P-256 and RSA-2048 hierarchies (root →
// intermediate → leaf) and the one-level ECDSA P-256 one (leaves signed by
// the root) under dir.
func newChains(dir string) ([]*chain, error) {
	var chains []*chain
	for _, kt := range []struct {
		key      pki.KeyType
		name     string
		slug     string
		oneLevel bool
	}{
		{pki.ECDSAP256, "ECDSA P-256", "ecdsa", false},
		{pki.RSA2048, "RSA-2048", "rsa", false},
		{pki.ECDSAP256, "ECDSA P-256, one level", "ecdsa1", true},
	} {
		set, err := pki.NewSet(kt.key)
		if err == nil && kt.oneLevel {
			set, err = oneLevelSet(kt.key)
		}
		if err != nil {
			return nil, fmt.Errorf("generating the %s chain: %w", kt.name, err)
		}
		d := filepath.Join(dir, kt.slug)
		files, err := set.WriteFiles(d)
		if err != nil {
			return nil, fmt.Errorf("writing the %s chain: %w", kt.name, err)
		}
		combined := filepath.Join(d, "server-combined.pem")
		if err := os.WriteFile(combined, append(set.Server.CertPEM(), set.Server.KeyPEM()...), 0o600); err != nil {
			return nil, err
		}
		chains = append(chains, &chain{
			name:       kt.name,
			slug:       kt.slug,
			set:        set,
			ca:         files.CA,
			serverCert: files.ServerCert,
			serverKey:  files.ServerKey,
			serverPEM:  combined,
			client:     set.ClientA.TLSCertificate(),
			roots:      set.Root.Pool(),
		})
	}
	return chains, nil
}

// oneLevelSet is a hierarchy without an intermediate: the root signs the
// server and client leaves.
func oneLevelSet(kt pki.KeyType) (*pki.Set, error) {
	root, err := pki.NewRoot("caddy-tlsresume bench one-level root", kt)
	if err != nil {
		return nil, err
	}
	srv, err := root.IssueServer(pki.Options{Key: kt, CommonName: "localhost", DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}})
	if err != nil {
		return nil, err
	}
	a, err := root.IssueClient(pki.Options{Key: kt, CommonName: "bench-client-a"})
	if err != nil {
		return nil, err
	}
	b, err := root.IssueClient(pki.Options{Key: kt, CommonName: "bench-client-b"})
	if err != nil {
		return nil, err
	}
	return &pki.Set{Root: root, Intermediate: root, Server: srv, ClientA: a, ClientB: b}, nil
}

// verifyingConfig is a client configuration that verifies the server's
// chain: the harness's readiness checks and first connections use it.
func (c *chain) verifyingConfig(version uint16) *tls.Config {
	return &tls.Config{
		ServerName:   "localhost",
		RootCAs:      c.roots,
		Certificates: []tls.Certificate{c.client},
		MinVersion:   version,
		MaxVersion:   version,
		// Key exchange is X25519 with every server. P-256 is listed too
		// because in TLS 1.2 the same extension names the curves an ECDSA
		// certificate may use, and OpenSSL holds servers to it.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256},
	}
}

// randomBytes returns n bytes from crypto/rand.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return b
}
