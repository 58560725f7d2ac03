package pki

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Set is the hierarchy most tests and the demo need: a root, an intermediate
// that signs every leaf, a server certificate for localhost and two client
// certificates carrying SPIFFE IDs.
type Set struct {
	Root         *Issuer
	Intermediate *Issuer
	Server       *Leaf
	ClientA      *Leaf // spiffe://demo.example.org/ns/payments/sa/api
	ClientB      *Leaf // spiffe://demo.example.org/ns/web/sa/frontend
}

// NewSet generates a Set whose keys are all of type kt. Server names are
// localhost, 127.0.0.1 and ::1 plus any extra DNS names given.
func NewSet(kt KeyType, extraServerNames ...string) (*Set, error) {
	root, err := NewRoot("caddy-tlsresume Test Root CA", kt)
	if err != nil {
		return nil, err
	}
	inter, err := root.NewIntermediate("caddy-tlsresume Test Intermediate CA", kt)
	if err != nil {
		return nil, err
	}
	srv, err := inter.IssueServer(Options{
		Key:         kt,
		CommonName:  "localhost",
		DNSNames:    append([]string{"localhost"}, extraServerNames...),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	})
	if err != nil {
		return nil, err
	}
	a, err := inter.IssueClient(Options{
		Key:        kt,
		CommonName: "payments-api",
		URIs:       []string{"spiffe://demo.example.org/ns/payments/sa/api"},
	})
	if err != nil {
		return nil, err
	}
	b, err := inter.IssueClient(Options{
		Key:        kt,
		CommonName: "web-frontend",
		URIs:       []string{"spiffe://demo.example.org/ns/web/sa/frontend"},
	})
	if err != nil {
		return nil, err
	}
	return &Set{Root: root, Intermediate: inter, Server: srv, ClientA: a, ClientB: b}, nil
}

// SetFiles are the paths written by Set.WriteFiles.
type SetFiles struct {
	CA                      string // root certificate (the client trust pool)
	ServerCert, ServerKey   string // leaf + intermediate, key
	ClientACert, ClientAKey string
	ClientBCert, ClientBKey string
}

// WriteFiles writes the set as PEM files into dir (created if missing).
func (s *Set) WriteFiles(dir string) (SetFiles, error) {
	var f SetFiles
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return f, err
	}
	var err error
	if f.CA, err = s.Root.WriteCertFile(dir, "ca"); err != nil {
		return f, err
	}
	if f.ServerCert, f.ServerKey, err = s.Server.WriteFiles(dir, "server"); err != nil {
		return f, err
	}
	if f.ClientACert, f.ClientAKey, err = s.ClientA.WriteFiles(dir, "client-a"); err != nil {
		return f, err
	}
	if f.ClientBCert, f.ClientBKey, err = s.ClientB.WriteFiles(dir, "client-b"); err != nil {
		return f, err
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err != nil {
		return f, fmt.Errorf("pki: writing set: %w", err)
	}
	return f, nil
}
