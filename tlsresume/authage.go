package tlsresume

import (
	"crypto/tls"
	"encoding/binary"
	"time"
)

// The ticket lifetime bounds the age of a session's authentication: the
// time since the client last completed a full handshake and so proved it
// holds its certificate's key. Every ticket carries that time, and a ticket
// issued on a resumed connection must carry the resumed session's time, not
// "now". Go does not carry it for us:
//
//   - TLS 1.2 keeps the resumed session's created_at in the state it hands
//     to WrapSession, so the time is read from there (authTimeTLS12);
//   - TLS 1.3 stamps every new ticket "now" and passes no per-connection
//     handle to WrapSession. What it does pass is the connection's peer
//     certificate slice, which on a resumed connection is the very slice
//     ParseSessionState allocated when UnwrapSession accepted the session.
//     UnwrapSession records the session's time under the address of that
//     slice's array (authCarry.put); WrapSession of the same connection
//     finds it there (authCarry.take). While the connection lives its
//     array lives, so no other session can share the address; an entry
//     left by a handshake that never reached WrapSession is overwritten
//     when the address is reused and expires after defaultConnTTL.
//
// A TLS 1.3 session without a client certificate has no such slice and no
// client authentication to age: its tickets are bounded one by one. A
// resumed TLS 1.3 connection whose time cannot be found (an entry evicted
// under a flood, or a Go release whose SessionState no longer has the
// field) gets a ticket that never opens, so its next connection is a full
// handshake: the bound can shorten a session, never lengthen it.

// authCarry hands a resumed session's authentication time (Unix seconds)
// from UnwrapSession to the WrapSession of the same TLS 1.3 connection,
// keyed by the session's peer certificate array (conntable.go). A record
// waits for its WrapSession at most defaultConnTTL: on TCP, Go issues the
// ticket in the same flight that accepts the session; over QUIC, once the
// handshake completes, one round trip later.
type authCarry = connTable[int64]

// sessionAuthTime says when the client of the session WrapSession is about
// to seal last completed a full handshake, or false when that is unknown.
func (b *policyBinding) sessionAuthTime(cs *tls.ConnectionState, state []byte, now time.Time) (time.Time, bool) {
	if !cs.DidResume {
		return now, true
	}
	if cs.Version <= tls.VersionTLS12 {
		return authTimeTLS12(state)
	}
	if len(cs.PeerCertificates) == 0 {
		// No client authentication to age (see above).
		return now, true
	}
	at, ok := b.carry.take(connPeersKey(cs), now)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(at, 0), true
}

// authTimeTLS12 reads created_at from a TLS 1.2 session's encoding: Go
// keeps the resumed session's value when it re-issues a ticket
// (handshake_server.go, sendSessionTicket), and the first ticket of a
// session is created on its full handshake.
func authTimeTLS12(state []byte) (time.Time, bool) {
	// uint16 version, uint8 type, uint16 cipher_suite, uint64 created_at
	if len(state) < 13 {
		return time.Time{}, false
	}
	return time.Unix(int64(binary.BigEndian.Uint64(state[5:13])), 0), true
}
