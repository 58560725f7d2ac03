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

	// verifyConnection is the policy's own VerifyConnection (Caddy installs
	// one that runs the client_auth verifier modules); it runs first on
	// every handshake, full or resumed.
	verifyConnection func(tls.ConnectionState) error

	// handshakes[resumed][mutual], resolved once: Inc is an atomic add.
	handshakes [2][2]prometheus.Counter
}

// errDenied refuses a client certificate on the fleet's deny list.
var errDenied = errors.New("tls_resume: client certificate is revoked")

// bindPolicy installs the hooks on pol for the named HTTP server.
func bindPolicy(pol *caddytls.ConnectionPolicy, server string, rings *ringHolder, lifetime time.Duration, acrossHosts bool) *policyBinding {
	cfg := pol.TLSConfig
	realm := realmDigest(pol)
	b := &policyBinding{
		ticketBinding: ticketBinding{
			realm:       realm,
			realmHint:   realmHintOf(realm),
			acrossHosts: acrossHosts,
			lifetime:    int64(lifetime / time.Second),
		},
		rings:            rings,
		now:              time.Now,
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
// connection): with no usable ring it hands out a ticket that never opens.
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
	state, err := ss.Bytes()
	if err != nil {
		return placeholderTicket, nil
	}
	t, err := b.sealTicket(k, now, cs.ServerName, state)
	if err != nil {
		return placeholderTicket, nil
	}
	if s := b.sessions; s != nil {
		// The stored blob is the stateless ticket itself: sealed under
		// the ring, bound to realm and host, carrying issued-at.
		if h, ok := b.wrapStored(s, cs, t, now); ok {
			return h, nil
		}
		if !s.stateless {
			return placeholderTicket, nil
		}
	}
	return t, nil
}

// unwrapSession opens a ticket. Every failure means "no resumption, full
// handshake" (nil, nil), counted by reason; it never ends the connection.
func (b *policyBinding) unwrapSession(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
	if s := b.sessions; s != nil && len(identity) > 0 && identity[0] != 0 {
		switch {
		case identity[0] == storeTicketVersion:
			ss, why := b.unwrapStored(s, identity, cs, b.now())
			if why != accepted {
				rejectionCounters[why].Inc()
				return nil, nil
			}
			return ss, nil
		case !s.stateless:
			// Stateless tickets are only accepted when they are the
			// configured fallback: with `fallback full` every session
			// must be in the store, where it can be revoked or taken.
			rejectionCounters[rejectStoreMiss].Inc()
			return nil, nil
		}
	}
	state, why := b.openTicket(b.rings.load(), identity, b.now(), cs.ServerName)
	if why != accepted {
		rejectionCounters[why].Inc()
		return nil, nil
	}
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		rejectionCounters[rejectBadState].Inc()
		return nil, nil
	}
	return ss, nil
}

// verify runs on every handshake, full and resumed: the policy's own
// verification (and so every client_auth verifier module), then the fleet's
// deny list; then it counts the handshake.
func (b *policyBinding) verify(cs tls.ConnectionState) error {
	if b.verifyConnection != nil {
		if err := b.verifyConnection(cs); err != nil {
			return err
		}
	}
	mutual := len(cs.PeerCertificates) > 0
	if mutual {
		if r := b.rings.load(); r != nil && r.denies(cs.PeerCertificates[0]) {
			return errDenied
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
