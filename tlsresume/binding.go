package tlsresume

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddytls"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// policyBinding takes over session tickets for one TLS connection policy:
// its WrapSession, UnwrapSession and VerifyConnection hooks are installed on
// the policy's tls.Config, which Caddy's GetConfigForClient hands to every
// handshake the policy matches (TCP and QUIC alike).
type policyBinding struct {
	ticketBinding
	rings *keyring.Holder
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

	// counts are this binding's share of the app's status (Status):
	// completed handshakes and rejected tickets, counted next to the
	// process-wide metrics.
	counts bindingCounts

	// obs times handshakes and their checks, and counts refusals.
	obs *handshakeObs
}

// bindOptions are what a policy's tickets are bound to and allowed.
type bindOptions struct {
	lifetime    time.Duration
	acrossHosts bool
	earlyData   earlyDataMode
	sites       *siteRules
}

// errDenied refuses a client certificate on the fleet's deny list.
var errDenied = errors.New("tls_resume: client certificate is revoked")

// bindPolicy installs the hooks on pol for the named HTTP server.
func bindPolicy(pol *caddytls.ConnectionPolicy, server string, rings *keyring.Holder, opts bindOptions) *policyBinding {
	cfg := pol.TLSConfig
	realm := realmDigest(pol)
	b := &policyBinding{
		ticketBinding: ticketBinding{
			realm:       realm,
			realmHint:   realmHintOf(realm),
			acrossHosts: opts.acrossHosts,
			lifetime:    int64(opts.lifetime / time.Second),
			sites:       opts.sites,
		},
		rings:            rings,
		now:              time.Now,
		earlyData:        opts.earlyData,
		verifyConnection: cfg.VerifyConnection,
		obs:              newHandshakeObs(server),
	}
	for r := range 2 {
		for m := range 2 {
			b.handshakes[r][m] = metrics.Handshakes.WithLabelValues(server, metrics.Bool(r == 1), metrics.Bool(m == 1))
		}
	}
	cfg.WrapSession = b.wrapSession
	cfg.UnwrapSession = b.unwrapSession
	cfg.VerifyConnection = b.verify
	if getCert := cfg.GetCertificate; getCert != nil {
		// The first callback of a full handshake without a ticket: where
		// its timing starts (observe.go).
		cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			b.obs.started(hello.ServerName, time.Now())
			return getCert(hello)
		}
	}
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
	r := b.rings.Load()
	if r == nil {
		return placeholderNoRing, nil
	}
	k := r.SealingKey(now)
	if k == nil {
		return placeholderNoRing, nil
	}
	if site := b.siteFor(cs.ServerName); site != nil && site.off {
		return placeholderDisabled, nil
	}
	s := b.sessions
	if ss.EarlyData && !b.earlyData.allows(s != nil) {
		ss.EarlyData = false
	}
	state, err := ss.Bytes()
	if err != nil {
		return placeholderFailed, nil
	}
	authAt, ok := b.sessionAuthTime(&cs, state, now)
	if !ok {
		return placeholderReauth, nil
	}
	if authAt.After(now) {
		authAt = now
	}
	t, err := b.sealTicket(k, now, authAt, cs.ServerName, state)
	if err != nil {
		return placeholderFailed, nil
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
		return placeholderStore, nil
	}
	if ss.EarlyData && !b.earlyData.allows(false) {
		// The fallback ticket is stateless: replayable, so no 0-RTT.
		ss.EarlyData = false
		if state, err = ss.Bytes(); err != nil {
			return placeholderFailed, nil
		}
		if t, err = b.sealTicket(k, now, authAt, cs.ServerName, state); err != nil {
			return placeholderFailed, nil
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
	b.obs.started(cs.ServerName, time.Now())
	if len(identity) == 0 {
		// A TLS 1.2 client that offers no ticket: nothing to reject.
		return nil, nil
	}
	now := b.now()
	r := b.rings.Load()
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
		b.rejected(why)
		return nil, nil
	}
	ss, err := tls.ParseSessionState(t.state)
	if err != nil {
		b.rejected(rejectBadState)
		return nil, nil
	}
	if ss.EarlyData {
		if stored != nil {
			ss.EarlyData = b.earlyData.allows(true) && b.sessions.claimEarlyData(stored, now)
		} else {
			ss.EarlyData = b.earlyData.allows(false)
		}
	}
	b.carry.put(sessionPeersKey(ss), t.authAt, now, nil)
	return ss, nil
}

// admit runs, on the client certificates a session carries, every check
// VerifyConnection runs on a full handshake: the fleet's deny list and the
// policy's own verification (Caddy's client_auth verifier modules, ours and
// third-party ones alike). It runs in UnwrapSession, before anything acts
// on the session (see unwrapSession).
func (b *policyBinding) admit(r *keyring.Snapshot, state []byte, cs *tls.ConnectionState) rejection {
	if b.verifyConnection == nil && (r == nil || !r.HasDenials()) {
		return accepted // nothing to check: skip parsing the chain
	}
	start := time.Now()
	peers, chains, ok := sessionPeers(state, parsedCerts)
	if !ok {
		return rejectBadState
	}
	// What VerifyConnection will see on this connection if the session
	// resumes.
	st := *cs
	st.DidResume = true
	st.PeerCertificates = peers
	st.VerifiedChains = chains
	why, err := b.check(r, &st)
	end := time.Now()
	b.obs.verified(true, end.Sub(start))
	switch why {
	case accepted:
		return accepted
	case rejectRevoked:
		b.obs.refused(refusedRevoked, &st, peers[0], err, end)
	default:
		b.obs.refused(refusedVerifier, &st, leafOf(peers), err, end)
	}
	return why
}

// check runs the client-authentication checks on cs: the policy's own
// verification, then the deny list. It returns accepted, rejectVerifier or
// rejectRevoked, with the verifier's error.
func (b *policyBinding) check(r *keyring.Snapshot, cs *tls.ConnectionState) (rejection, error) {
	if b.verifyConnection != nil {
		if err := b.verifyConnection(*cs); err != nil {
			return rejectVerifier, err
		}
	}
	if len(cs.PeerCertificates) > 0 && r != nil && r.Denies(cs.PeerCertificates[0]) {
		return rejectRevoked, errDenied
	}
	return accepted, nil
}

// verify runs on every handshake. A full handshake gets the policy's own
// verification (and so every client_auth verifier module), then the fleet's
// deny list; a resumed one passed both in admit before its ticket was
// accepted. Then it counts and times the handshake.
func (b *policyBinding) verify(cs tls.ConnectionState) error {
	mutual := len(cs.PeerCertificates) > 0
	if !cs.DidResume {
		start := time.Now()
		why, err := b.check(b.rings.Load(), &cs)
		end := time.Now()
		b.obs.verified(false, end.Sub(start))
		if why != accepted {
			reason := refusedVerifier
			if why == rejectRevoked {
				reason = refusedRevoked
			}
			b.obs.refused(reason, &cs, leafOf(cs.PeerCertificates), err, end)
			b.obs.finished(&cs, end)
			return err
		}
	}
	r, m := boolIndex(cs.DidResume), boolIndex(mutual)
	b.handshakes[r][m].Inc()
	b.counts.handshakes[r][m].Add(1)
	b.obs.completed(&cs, mutual, time.Now())
	return nil
}

func leafOf(certs []*x509.Certificate) *x509.Certificate {
	if len(certs) == 0 {
		return nil
	}
	return certs[0]
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// bindingCounts are what one policy binding adds to the app's status:
// atomic adds, lock-free and allocation-free on the handshake path.
type bindingCounts struct {
	handshakes [2][2]atomic.Uint64 // [resumed][mutual]
	rejections [numRejections]atomic.Uint64
}

// rejected counts a ticket that did not resume, by reason: in the
// process-wide metric and in this binding's status counts.
func (b *policyBinding) rejected(why rejection) {
	rejectionCounters[why].Inc()
	b.counts.rejections[why].Add(1)
}

// rejectionCounters are the ticket_rejections_total series, one per reason.
var rejectionCounters = func() [numRejections]prometheus.Counter {
	var c [numRejections]prometheus.Counter
	for i := rejectMalformed; i < numRejections; i++ {
		c[i] = metrics.TicketRejections.WithLabelValues(rejectionReasons[i])
	}
	return c
}()
