package upstream

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// goBackend is a crypto/tls HTTPS upstream requiring a client certificate
// (mTLS). It sees every handshake from the server side: whether it resumed,
// and which tickets clients presented — its own, or ones another server
// issued (possible only if a client offered a session across servers).
type goBackend struct {
	Name string
	Addr string

	handshakes atomic.Int64
	resumed    atomic.Int64
	offered    atomic.Int64 // tickets / PSK identities presented
	foreign    atomic.Int64 // presented tickets this server never issued

	mu     sync.Mutex
	issued map[string]bool

	srv *http.Server
}

type goBackendOptions struct {
	name      string
	addr      string // default 127.0.0.1:0
	cert      tls.Certificate
	clientCAs *pki.Issuer
	maxVer    uint16
	// ticketKey, when set, is this server's only session ticket key (two
	// servers with the same key accept each other's tickets).
	ticketKey *[32]byte
	// certNow, when set, replaces cert: the certificate served is whatever
	// it returns at each handshake (the ticket keys stay).
	certNow func() *tls.Certificate
}

func startGoBackend(t testing.TB, o goBackendOptions) *goBackend {
	t.Helper()
	if o.addr == "" {
		o.addr = "127.0.0.1:0"
	}
	b := &goBackend{Name: o.name, issued: map[string]bool{}}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{o.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    o.clientCAs.Pool(),
		MaxVersion:   o.maxVer,
		NextProtos:   []string{"h2", "http/1.1"},
	}
	if o.certNow != nil {
		cfg.Certificates = nil
		cfg.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return o.certNow(), nil }
	}
	if o.ticketKey != nil {
		cfg.SetSessionTicketKeys([][32]byte{*o.ticketKey})
	}
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ticket, err := cfg.EncryptTicket(cs, ss)
		if err == nil {
			b.mu.Lock()
			b.issued[string(ticket)] = true
			b.mu.Unlock()
		}
		return ticket, err
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		b.offered.Add(1)
		b.mu.Lock()
		own := b.issued[string(identity)]
		b.mu.Unlock()
		if !own {
			b.foreign.Add(1)
		}
		return cfg.DecryptTicket(identity, cs)
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		b.handshakes.Add(1)
		if cs.DidResume {
			b.resumed.Add(1)
		}
		return nil
	}
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ { // a restarted backend waits for its old port
		if ln, err = tls.Listen("tcp", o.addr, cfg); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("backend %s: %v", o.name, err)
	}
	b.Addr = ln.Addr().String()
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("X-Backend", b.Name)
			fmt.Fprintf(w, "backend=%s resumed=%v", b.Name, r.TLS.DidResume)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = b.srv.Serve(ln) }()
	t.Cleanup(b.stop)
	return b
}

func (b *goBackend) stop() { _ = b.srv.Close() }
