package tlsresume

import (
	"crypto/tls"
	"encoding/binary"
	"sync"
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
//     when the address is reused and expires after authCarryTTL.
//
// A TLS 1.3 session without a client certificate has no such slice and no
// client authentication to age: its tickets are bounded one by one. A
// resumed TLS 1.3 connection whose time cannot be found (an entry evicted
// under a flood, or a Go release whose SessionState no longer has the
// field) gets a ticket that never opens, so its next connection is a full
// handshake: the bound can shorten a session, never lengthen it.

// authCarryTTL bounds how long an entry waits for its WrapSession. On TCP,
// Go issues the ticket in the same flight that accepts the session; over
// QUIC, once the handshake completes, one round trip later.
const authCarryTTL = 30 * time.Second

// authCarry hands a resumed session's authentication time from
// UnwrapSession to the WrapSession of the same TLS 1.3 connection.
type authCarry struct {
	shards [authCarryShards]authCarryShard
}

const (
	authCarryShards   = 16
	authCarryShardCap = 4096 // 65,536 handshakes in flight
)

type authCarryShard struct {
	mu        sync.Mutex
	m         map[uintptr]authCarryEntry
	nextSweep int64
}

type authCarryEntry struct {
	authAt  int64 // Unix seconds
	expires int64 // Unix nanoseconds
}

func (a *authCarry) shard(key uintptr) *authCarryShard {
	// Arrays of pointers are at least 8-byte aligned.
	return &a.shards[(key>>3)%authCarryShards]
}

// put records authAt for the session whose peer array is at key. A full
// shard (a flood of handshakes that never finish) drops the record: that
// connection's next ticket will not open.
func (a *authCarry) put(key uintptr, authAt int64, now time.Time) {
	if key == 0 {
		return
	}
	n := now.UnixNano()
	sh := a.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m == nil {
		sh.m = make(map[uintptr]authCarryEntry)
	}
	if n >= sh.nextSweep {
		// At most one sweep per half TTL, so a flood cannot make every
		// put walk a full shard.
		for k, e := range sh.m {
			if e.expires <= n {
				delete(sh.m, k)
			}
		}
		sh.nextSweep = n + int64(authCarryTTL/2)
	}
	if _, ok := sh.m[key]; !ok && len(sh.m) >= authCarryShardCap {
		return
	}
	// Overwrite: an entry at this address belongs to a dead array.
	sh.m[key] = authCarryEntry{authAt: authAt, expires: n + int64(authCarryTTL)}
}

// take returns and forgets the authentication time recorded for key.
func (a *authCarry) take(key uintptr, now time.Time) (int64, bool) {
	if key == 0 {
		return 0, false
	}
	sh := a.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[key]
	if ok {
		delete(sh.m, key)
	}
	sh.mu.Unlock()
	if !ok || e.expires <= now.UnixNano() {
		return 0, false
	}
	return e.authAt, true
}

// len counts the entries, for tests.
func (a *authCarry) len() int {
	n := 0
	for i := range a.shards {
		sh := &a.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

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
