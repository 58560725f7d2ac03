package tlsdial

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// serve accepts TLS connections on loopback with cfg, answering each with
// "ok" after its handshake, until the test ends.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err == nil {
					_, _ = io.WriteString(c, "ok")
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestDial(t *testing.T) {
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, &tls.Config{
		Certificates: []tls.Certificate{set.Server.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    set.Root.Pool(),
	})
	client := func(leaf *pki.Leaf) *tls.Config {
		cfg := &tls.Config{RootCAs: set.Root.Pool(), ServerName: "localhost"}
		if leaf != nil {
			cfg.Certificates = []tls.Certificate{leaf.TLSCertificate()}
		}
		return cfg
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("handshake", func(t *testing.T) {
		conn, took, err := Dial(ctx, addr, client(set.ClientA))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if took <= 0 {
			t.Errorf("handshake took %v, want > 0", took)
		}
		got, err := io.ReadAll(conn)
		if err != nil || string(got) != "ok" {
			t.Fatalf("read %q, %v; want \"ok\"", got, err)
		}
	})

	t.Run("deadline bounds reads", func(t *testing.T) {
		// A server that completes the handshake and then says nothing.
		quiet, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{set.Server.TLSCertificate()}})
		if err != nil {
			t.Fatal(err)
		}
		defer quiet.Close()
		go func() {
			c, err := quiet.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.(*tls.Conn).Handshake()
			_, _ = io.Copy(io.Discard, c)
		}()
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		conn, _, err := Dial(short, quiet.Addr().String(), client(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = conn.Read(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("read after the context's deadline: %v, want a timeout", err)
		}
	})

	t.Run("untrusted server", func(t *testing.T) {
		cfg := client(set.ClientA)
		cfg.RootCAs = nil // the system pool does not hold the test root
		_, _, err := Dial(ctx, addr, cfg)
		var unknown x509.UnknownAuthorityError
		if err == nil || !strings.Contains(err.Error(), "TLS handshake with "+addr) || !errors.As(err, &unknown) {
			t.Fatalf("err = %v, want a wrapped unknown-authority handshake error naming %s", err, addr)
		}
	})

	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		_, _, err = Dial(ctx, closed, client(set.ClientA))
		if err == nil || strings.Contains(err.Error(), "TLS handshake") {
			t.Fatalf("err = %v, want the dialer's error", err)
		}
	})
}
