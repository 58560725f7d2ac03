package harness

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/internal/tlsdial"
)

// ClientConfig returns a TLS client configuration that trusts set's root,
// presents client's certificate chain (none when client is nil), verifies
// the server as serverName (default "localhost") and keeps sessions in a
// fresh LRU ClientSessionCache, so that a second connection with the same
// config can resume. Adjust MinVersion/MaxVersion on the result to pin a
// protocol version.
func ClientConfig(set *pki.Set, client *pki.Leaf, serverName string) *tls.Config {
	if serverName == "" {
		serverName = "localhost"
	}
	cfg := &tls.Config{
		RootCAs:            set.Root.Pool(),
		ServerName:         serverName,
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
		MinVersion:         tls.VersionTLS12,
	}
	if client != nil {
		cfg.Certificates = []tls.Certificate{client.TLSCertificate()}
	}
	return cfg
}

// defaultTimeout bounds client helpers called with a context that has no
// deadline.
const defaultTimeout = 15 * time.Second

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

// Handshake dials addr over TCP, completes a TLS handshake with cfg and
// returns the connection state (DidResume says whether the session was
// resumed). Before closing it sends close_notify and reads until the server
// closes, so that TLS 1.3 session tickets, which arrive after the handshake,
// reach cfg.ClientSessionCache for the next call. The server must close the
// connection when the client does (HTTP servers do).
func Handshake(ctx context.Context, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	conn, _, err := tlsdial.Dial(ctx, addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	state := conn.ConnectionState()
	if err := conn.CloseWrite(); err != nil {
		return state, fmt.Errorf("sending close_notify to %s: %w", addr, err)
	}
	// Reading processes post-handshake messages (session tickets) until the
	// server's close_notify or EOF; a handshake failure the server reports
	// only after our Finished (TLS 1.3 client auth) also surfaces here.
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return state, fmt.Errorf("reading from %s after the handshake: %w", addr, err)
	}
	return state, nil
}

// Response is what Get returns.
type Response struct {
	// State is the TLS connection state after the response was read.
	State      tls.ConnectionState
	StatusCode int
	Header     http.Header
	Body       string
}

// Get opens a new TLS connection to addr with cfg (forcing HTTP/1.1 through
// ALPN), sends "GET path" with Connection: close, and returns the TLS state
// and the whole response. Reading the response also stores any TLS 1.3
// session ticket in cfg.ClientSessionCache. The Host header is
// cfg.ServerName with the port of addr.
func Get(ctx context.Context, addr string, cfg *tls.Config, path string) (*Response, error) {
	return Do(ctx, addr, cfg, http.MethodGet, path, nil)
}

// Do is Get for any method and request headers.
func Do(ctx context.Context, addr string, cfg *tls.Config, method, path string, header http.Header) (*Response, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	c := cfg.Clone()
	c.NextProtos = []string{"http/1.1"}
	// Clone shares the session cache, which is what callers want.
	conn, _, err := tlsdial.Dial(ctx, addr, c)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_, port, _ := net.SplitHostPort(addr)
	host := c.ServerName
	if host == "" {
		host, _, _ = net.SplitHostPort(addr)
	}
	req, err := http.NewRequestWithContext(ctx, method, "https://"+net.JoinHostPort(host, port)+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Close = true
	if err := req.Write(conn); err != nil {
		return nil, fmt.Errorf("writing request to %s: %w", addr, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return nil, fmt.Errorf("reading response from %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading response body from %s: %w", addr, err)
	}
	return &Response{State: conn.ConnectionState(), StatusCode: resp.StatusCode, Header: resp.Header, Body: string(body)}, nil
}
