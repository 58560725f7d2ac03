package tlsresume

import (
	"crypto/tls"
	"errors"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
)

// policyBinding takes over session tickets for one TLS connection policy:
// its WrapSession, UnwrapSession and VerifyConnection hooks are installed on
// the policy's tls.Config, which Caddy's GetConfigForClient hands to every
// handshake the policy matches (TCP and QUIC alike).
type policyBinding struct {
	ticketBinding
	rings *ringHolder
	now   func() time.Time

	// sessions, when set, makes resumption stateful: tickets are handles
	// to sessions in a session store (sessions.go).
	sessions *sessions

	// earlyData says which tickets may carry 0-RTT.
	earlyData earlyDataMode

	// verifyConnection is the policy's own VerifyConnection (Caddy installs
	// one that runs the client_auth verifier modules). It runs on every
	// full handshake, and on the session's certificates before a ticket
	// is accepted (admit).
	verifyConnection func(tls.ConnectionState) error

	// carry hands authentication times from UnwrapSession to WrapSession
	// on resumed TLS 1.3 connections (authage.go).
	carry authCarry

	// handshakes[resumed][mutual], resolved once: Inc is an atomic add.
	handshakes [2][2]prometheus.Counter
}

// bindOptions are what a policy's tickets are bound to and allowed.
type bindOptions struct {
	lifetime    time.Duration
	acrossHosts bool
	earlyData   earlyDataMode
}

// errDenied refuses a client certificate on the fleet's deny list.
var errDenied = errors.New("tls_resume: client certificate is revoked")

// bindPolicy installs the hooks on pol for the named HTTP server.
func bindPolicy(pol *caddytls.ConnectionPolicy, server string, rings *ringHolder, opts bindOptions) *policyBinding {
	cfg := pol.TLSConfig
	realm := realmDigest(pol)
	b := &policyBinding{
		ticketBinding: ticketBinding{
			realm:       realm,
			realmHint:   realmHintOf(realm),
			acrossHosts: opts.acrossHosts,
			lifetime:    int64(opts.lifetime / time.Second),
		},
		rings:            rings,
		now:              time.Now,
		earlyData:        opts.earlyData,
		verifyConnection: cfg.VerifyConnection,
	}
	for r := range 2 {
		for m := range 2 {
			b.handshakes[r][m] = metrics.Handshakes.WithLabelValues(server, metrics.Bool(r == 1), metrics.Bool(m == 1))
		}
	}
	cfg.WrapSession = b.wrapSession
	cfg.UnwrapSession = b.unwrapSession
	cfg.VerifyConnection = b.verify
	// Stock Caddy disables tickets on client-auth policies because a
	// ticket could resume under another policy; ours are bound to the
	// policy's realm and re-verified, so mTLS sessions may resume.
	cfg.SessionTicketsDisabled = false
	return b
}

// wrapSession seals a session ticket. It must not fail (Go would end the
// connection): with no usable ring, or when the session's authentication
// time is unknown, it hands out a ticket that never opens.
func (b *policyBinding) wrapSession(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
	now := b.now()
	r := b.rings.load()
	if r == nil {
		return placeholderTicket, nil
	}
	k := r.sealingKey(now)
	if k == nil {
		return placeholderTicket, nil
	}
	s := b.sessions
	if ss.EarlyData && !b.earlyData.allows(s != nil) {
		ss.EarlyData = false
	}
	state, err := ss.Bytes()
	if err != nil {
		return placeholderTicket, nil
	}
	authAt, ok := b.sessionAuthTime(&cs, state, now)
	if !ok {
		return placeholderTicket, nil
	}
	if authAt.After(now) {
		authAt = now
	}
	t, err := b.sealTicket(k, now, authAt, cs.ServerName, state)
	if err != nil {
		return placeholderTicket, nil
	}
	if s == nil {
		return t, nil
	}
	// The stored blob is the stateless ticket itself: sealed under the
	// ring, bound to realm and host, carrying its times.
	if h, ok := b.wrapStored(s, cs, t, now); ok {
		return h, nil
	}
	if !s.stateless {
		return placeholderTicket, nil
	}
	if ss.EarlyData && !b.earlyData.allows(false) {
		// The fallback ticket is stateless: replayable, so no 0-RTT.
		ss.EarlyData = false
		if state, err = ss.Bytes(); err != nil {
			return placeholderTicket, nil
		}
		if t, err = b.sealTicket(k, now, authAt, cs.ServerName, state); err != nil {
			return placeholderTicket, nil
		}
	}
	return t, nil
}

// unwrapSession opens a ticket. Every failure means "no resumption, full
// handshake" (nil, nil), counted by reason; it never ends the connection.
// A ticket is accepted only after every check a full handshake of this
// policy runs on the client certificate has passed (admit): on a resumed
// TLS 1.3 connection Go runs VerifyConnection only after it has sent its
// Finished and a new ticket, and over QUIC after 0-RTT requests have
// reached the handlers.
func (b *policyBinding) unwrapSession(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	if len(identity) == 0 {
		// A TLS 1.2 client that offers no ticket: nothing to reject.
		return nil, nil
	}
	now := b.now()
	r := b.rings.load()
	var (
		t      openedTicket
		why    rejection
		stored []byte // store ID of a stateful session
	)
	switch s := b.sessions; {
	case s != nil && identity[0] == storeTicketVersion:
		t, stored, why = b.openStored(s, r, identity, cs.ServerName, now)
	case s != nil && identity[0] != 0 && !s.stateless:
		// Stateless tickets are only accepted when they are the
		// configured fallback: with `fallback full` every session must
		// be in the store, where it can be revoked or taken.
		why = rejectStoreMiss
	default:
		t, why = b.openTicket(r, identity, now, cs.ServerName)
	}
	if why == accepted {
		why = b.admit(r, t.state, &cs)
	}
	if why != accepted {
		rejectionCounters[why].Inc()
		return nil, nil
	}
	ss, err := tls.ParseSessionState(t.state)
	if err != nil {
		rejectionCounters[rejectBadState].Inc()
		return nil, nil
	}
	if ss.EarlyData {
		if stored != nil {
			ss.EarlyData = b.earlyData.allows(true) && b.sessions.claimEarlyData(stored, now)
		} else {
			ss.EarlyData = b.earlyData.allows(false)
		}
	}
	b.carry.put(sessionPeersKey(ss), t.authAt, now)
	return ss, nil
}

// admit runs, on the client certificates a session carries, every check
// VerifyConnection runs on a full handshake: the fleet's deny list and the
// policy's own verification (Caddy's client_auth verifier modules, ours and
// third-party ones alike). It runs in UnwrapSession, before anything acts
// on the session (see unwrapSession).
func (b *policyBinding) admit(r *ring, state []byte, cs *tls.ConnectionState) rejection {
	if b.verifyConnection == nil && (r == nil || !r.hasDenials()) {
		return accepted // nothing to check: skip parsing the chain
	}
	peers, chains, ok := sessionPeers(state, parsedCerts)
	if !ok {
		return rejectBadState
	}
	if len(peers) > 0 && r != nil && r.denies(peers[0]) {
		return rejectRevoked
	}
	if b.verifyConnection != nil {
		// What VerifyConnection will see on this connection if the
		// session resumes.
		st := *cs
		st.DidResume = true
		st.PeerCertificates = peers
		st.VerifiedChains = chains
		if b.verifyConnection(st) != nil {
			return rejectVerifier
		}
	}
	return accepted
}

// verify runs on every handshake. A full handshake gets the policy's own
// verification (and so every client_auth verifier module), then the fleet's
// deny list; a resumed one passed both in admit before its ticket was
// accepted. Then it counts the handshake.
func (b *policyBinding) verify(cs tls.ConnectionState) error {
	mutual := len(cs.PeerCertificates) > 0
	if !cs.DidResume {
		if b.verifyConnection != nil {
			if err := b.verifyConnection(cs); err != nil {
				return err
			}
		}
		if mutual {
			if r := b.rings.load(); r != nil && r.denies(cs.PeerCertificates[0]) {
				return errDenied
			}
		}
	}
	b.handshakes[boolIndex(cs.DidResume)][boolIndex(mutual)].Inc()
	return nil
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rejectionCounters are the ticket_rejections_total series, one per reason.
var rejectionCounters = func() [numRejections]prometheus.Counter {
	var c [numRejections]prometheus.Counter
	for i := rejectMalformed; i < numRejections; i++ {
		c[i] = metrics.TicketRejections.WithLabelValues(rejectionReasons[i])
	}
	return c
}()
