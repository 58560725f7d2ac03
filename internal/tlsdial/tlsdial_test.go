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

// capture is a session cache keeping the last session stored.
type capture struct{ cs *tls.ClientSessionState }

func (c *capture) Get(string) (*tls.ClientSessionState, bool) { return nil, false }
func (c *capture) Put(_ string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.cs = cs
	}
}

// TestTicketLifetime reads the lifetime back from real sessions: Go's
// server (always 7 days), and the same session re-encoded with other
// use-by times, as a server with another ticket_lifetime would give.
func TestTicketLifetime(t *testing.T) {
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	for _, version := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		addr := serve(t, &tls.Config{Certificates: []tls.Certificate{set.Server.TLSCertificate()}, MaxVersion: version})
		var c capture
		now := time.Now()
		cfg := &tls.Config{ServerName: "localhost", RootCAs: set.Root.Pool(), ClientSessionCache: &c, Time: func() time.Time { return now }}
		conn, _, err := Dial(context.Background(), addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(conn) // takes in a TLS 1.3 ticket
		conn.Close()
		if c.cs == nil {
			t.Fatalf("%s: no session stored", tls.VersionName(version))
		}
		life, ok := TicketLifetime(c.cs)
		if version == tls.VersionTLS12 {
			if ok {
				t.Errorf("TLS 1.2: lifetime %s reported; Go keeps none", life)
			}
			continue
		}
		if !ok || life != 7*24*time.Hour {
			t.Fatalf("TLS 1.3 from Go's server: %s %v, want 168h", life, ok)
		}
		// Re-encode with use_by = created_at + d: the last 12 bytes of a
		// TLS 1.3 client session are use_by and age_add.
		ticket, state, err := c.cs.ResumptionState()
		if err != nil {
			t.Fatal(err)
		}
		b, err := state.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		created := uint64(now.Unix())
		for _, d := range []time.Duration{30 * time.Minute, 7200 * time.Second, time.Second} {
			mod := append([]byte(nil), b...)
			useBy := created + uint64(d/time.Second)
			for i := 0; i < 8; i++ {
				mod[len(mod)-12+i] = byte(useBy >> (56 - 8*i))
			}
			st, err := tls.ParseSessionState(mod)
			if err != nil {
				t.Fatal(err)
			}
			cs, err := tls.NewResumptionState(ticket, st)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := TicketLifetime(cs); !ok || got != d {
				t.Errorf("use_by created+%s: got %s %v", d, got, ok)
			}
		}
	}
	if _, ok := TicketLifetime(nil); ok {
		t.Error("nil session: ok")
	}
}
