// Package tlsdial opens one TLS connection over TCP and times its handshake,
// so that the CLI, the integration harness and the benchmark harness measure
// a handshake the same way: from the first ClientHello to the client's
// Finished, without the TCP connect.
package tlsdial

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// Dial connects to addr over TCP, sets ctx's deadline (if any) on the socket
// so that every later read and write is bounded too, and completes the TLS
// handshake with cfg. It returns the connection and how long the handshake
// took. A failed TCP connect is returned as the dialer reports it; a failed
// handshake is wrapped with addr, and the socket is closed.
//
// Callers that measure servers close with conn.NetConn().Close() when they
// want no close_notify on the wire.
func Dial(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, time.Duration, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(dl)
	}
	conn := tls.Client(raw, cfg)
	start := time.Now()
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, 0, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return conn, time.Since(start), nil
}
