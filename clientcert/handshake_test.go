package clientcert

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// handshake runs a real TLS handshake over an in-memory pipe and returns
// the server's view of the connection. mutate may adjust the server config
// (client auth mode, VerifyConnection). The server sends one byte after the
// handshake so that a TLS 1.3 client receives its session ticket.
func handshake(t testing.TB, f *fixtures, clientAuth tls.ClientAuthType, client *pki.Leaf,
	cache tls.ClientSessionCache, verify func(tls.ConnectionState) error) (tls.ConnectionState, error) {
	t.Helper()
	serverCfg := &tls.Config{
		Certificates:     []tls.Certificate{f.server.TLSCertificate()},
		ClientAuth:       clientAuth,
		ClientCAs:        f.root.Pool(),
		VerifyConnection: verify,
	}
	// Resumption needs the same ticket keys across connections.
	serverCfg.SetSessionTicketKeys([][32]byte{{1, 2, 3}})
	clientCfg := &tls.Config{
		RootCAs:            f.root.Pool(),
		ServerName:         "localhost",
		ClientSessionCache: cache,
	}
	if client != nil {
		c := client.TLSCertificate()
		clientCfg.Certificates = []tls.Certificate{c}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	type result struct {
		state tls.ConnectionState
		err   error
	}
	done := make(chan result, 1)
	go func() {
		sc, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer sc.Close()
		_ = sc.SetDeadline(time.Now().Add(10 * time.Second))
		s := tls.Server(sc, serverCfg)
		err = s.Handshake()
		if err == nil {
			_, err = s.Write([]byte{'x'})
		}
		done <- result{s.ConnectionState(), err}
	}()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_ = cc.SetDeadline(time.Now().Add(10 * time.Second))
	c := tls.Client(cc, clientCfg)
	cerr := c.Handshake()
	if cerr == nil {
		var b [1]byte
		_, cerr = c.Read(b[:])
	}
	c.Close()
	r := <-done
	if r.err != nil {
		return r.state, r.err
	}
	return r.state, cerr
}

// caddyVerifyConnection mirrors how Caddy's client authentication calls
// verifiers from tls.Config.VerifyConnection (modules/caddytls/connpolicy.go).
func caddyVerifyConnection(v *Verifier) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		raw := make([][]byte, len(cs.PeerCertificates))
		for i, c := range cs.PeerCertificates {
			raw[i] = c.Raw
		}
		return v.VerifyClientCertificate(raw, cs.VerifiedChains)
	}
}

// leafOf is a helper for messages.
func leafOf(cs tls.ConnectionState) *x509.Certificate {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	return cs.PeerCertificates[0]
}
