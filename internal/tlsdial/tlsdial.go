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

	"golang.org/x/crypto/cryptobyte"
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

// TicketLifetime returns the lifetime the server gave a TLS 1.3 session
// ticket (the ticket_lifetime of its NewSessionTicket, RFC 8446 Section
// 4.6.1), as crypto/tls stored it in cs. ok is false for TLS 1.2 sessions —
// crypto/tls reads and drops the TLS 1.2 lifetime hint — and for encodings
// it does not understand.
//
// crypto/tls exposes no accessor: it records the ticket's use-by time
// (received + lifetime) in the session's private fields. Its
// SessionState.Bytes encoding, documented in crypto/tls/ticket.go, carries
// created_at (when the ticket was received) and, at the end of a TLS 1.3
// client session, use_by; the lifetime is their difference, exact when the
// connection's Config.Time returns one instant (crypto/tls reads the clock
// once for each). The encoding may change between Go versions; fields are
// only ever appended, and a failed parse reports ok false rather than a
// wrong value.
func TicketLifetime(cs *tls.ClientSessionState) (lifetime time.Duration, ok bool) {
	if cs == nil {
		return 0, false
	}
	_, state, err := cs.ResumptionState()
	if err != nil || state == nil {
		return 0, false
	}
	b, err := state.Bytes()
	if err != nil {
		return 0, false
	}
	s := cryptobyte.String(b)
	var (
		version, suite         uint16
		typ, ems, early        uint8
		createdAt, useBy       uint64
		ageAdd                 uint32
		secret, alpn           cryptobyte.String
		extra, certs, verified cryptobyte.String
	)
	if !s.ReadUint16(&version) || !s.ReadUint8(&typ) || !s.ReadUint16(&suite) ||
		!s.ReadUint64(&createdAt) || !s.ReadUint8LengthPrefixed(&secret) ||
		!s.ReadUint24LengthPrefixed(&extra) || !s.ReadUint8(&ems) || !s.ReadUint8(&early) ||
		!s.ReadUint24LengthPrefixed(&certs) || !s.ReadUint24LengthPrefixed(&verified) {
		return 0, false
	}
	if typ != 2 || version < tls.VersionTLS13 { // 2: a client session
		return 0, false
	}
	if early == 1 && !s.ReadUint8LengthPrefixed(&alpn) {
		return 0, false
	}
	if !s.ReadUint64(&useBy) || !s.ReadUint32(&ageAdd) || useBy < createdAt {
		return 0, false
	}
	return time.Duration(useBy-createdAt) * time.Second, true
}
