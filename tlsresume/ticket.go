package tlsresume

import (
	"crypto/rand"
	"encoding/binary"
	"time"

	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// Ticket layout (all integers big-endian):
//
//	0      version            1 byte  (ticketVersion; 0 = "no ring, never opens")
//	1..4   key ID             4 bytes
//	5..6   realm hint         2 bytes (diagnostics only: tells a ticket of
//	7..8   host hint          2 bytes  another realm or host from a forgery)
//	9..20  nonce              12 bytes
//	21..   AES-256-GCM( issued-at        Unix seconds, 8 bytes
//	                 || authenticated-at Unix seconds, 8 bytes
//	                 || SessionState bytes )
//
// The associated data is the 21-byte header, the 32-byte realm digest and,
// unless tickets may cross hosts, the lower-cased SNI. So a ticket opens only
// under the key that sealed it, for the client-auth policy that issued it,
// on the host it was issued for; the hints only make the refusal reason
// visible in metrics.
//
// Authenticated-at is when the client last completed a full handshake (proved
// possession of its certificate's key); a ticket issued on a resumed
// connection carries the resumed session's time, not its own (authage.go).
// The ticket lifetime is enforced on it, by us, not by the 7 days Go and the
// client would allow, so resuming over and over never postpones the next
// full handshake. Issued-at only tells tickets from the future.
//
// Version 1 tickets (issued-at only) are no longer accepted: they open as
// malformed, and the client gets a full handshake.
const (
	ticketVersion   = 3
	ticketHeaderLen = 21
	ticketNonceLen  = 12
	ticketTagLen    = 16
	timesLen        = 16 // issued-at, authenticated-at
	// ticketMinLen is the shortest ticket that can hold anything.
	ticketMinLen = ticketHeaderLen + timesLen + ticketTagLen
	// maxSNILen bounds the SNI bound into the associated data (DNS names
	// are at most 253 bytes; Go refuses longer ones).
	maxSNILen = 255
	// allowedFutureSkew is how far in the future a ticket's issued-at may
	// lie: another node's clock may run ahead of ours.
	allowedFutureSkew = 5 * time.Minute
)

// With a session store the client's ticket is only a handle to the stored
// session (see sessions.go):
//
//	0      version            1 byte  (storeTicketVersion)
//	1..32  handle             32 random bytes
const (
	storeTicketVersion = 2
	storeHandleLen     = 32
	storeTicketLen     = 1 + storeHandleLen
)

// Placeholder tickets never open. Go ends the connection if WrapSession
// fails, and a TLS 1.3 ticket cannot be empty, so when no usable ticket can
// be issued the client gets one of these and comes back to a full
// handshake, which is the promised behaviour. The second byte says why, so
// the refusal is counted under its true cause when the ticket comes back.
var (
	// No ring is usable (not loaded yet, or none this node can open).
	placeholderNoRing = []byte{0}
	// The session store could not keep the session (and fallback is full).
	placeholderStore = []byte{0, 1}
	// The resumed session's authentication time is unknown (authage.go).
	placeholderReauth = []byte{0, 2}
	// Sealing failed (no randomness, or an unencodable session).
	placeholderFailed = []byte{0, 3}
	// The host's site policy has resumption off.
	placeholderDisabled = []byte{0, 4}
)

// placeholderRejection is the rejection reason of a placeholder ticket.
func placeholderRejection(ticket []byte) rejection {
	if len(ticket) == 2 {
		switch ticket[1] {
		case 1:
			return rejectStoreError
		case 2:
			return rejectExpired
		case 3:
			return rejectBadState
		case 4:
			return rejectDisabled
		}
	}
	return rejectNoRing
}

// rejection is why a ticket did not resume a session.
type rejection uint8

const (
	accepted rejection = iota
	rejectMalformed
	rejectNoRing
	rejectUnknownKey
	rejectRetiredKey
	rejectWrongRealm
	rejectWrongHost
	rejectTampered
	rejectExpired
	rejectNotYetValid
	rejectInvalidated
	rejectBadState
	rejectStoreMiss
	rejectStoreError
	rejectRevoked
	rejectVerifier
	rejectDisabled
	numRejections
)

// rejectionReasons are the values of the ticket_rejections_total reason
// label.
var rejectionReasons = [numRejections]string{
	accepted:          "",
	rejectMalformed:   "malformed",
	rejectNoRing:      "no_ring",
	rejectUnknownKey:  "unknown_key",
	rejectRetiredKey:  "retired_key",
	rejectWrongRealm:  "wrong_realm",
	rejectWrongHost:   "wrong_host",
	rejectTampered:    "tampered",
	rejectExpired:     "expired",
	rejectNotYetValid: "not_yet_valid",
	rejectInvalidated: "invalidated",
	rejectBadState:    "bad_state",
	rejectStoreMiss:   "store_miss",
	rejectStoreError:  "store_error",
	// The session's client certificate failed a check before its ticket
	// was accepted: on the deny list, or refused by the policy's
	// verification. The full handshake that follows refuses the client.
	rejectRevoked:  "revoked",
	rejectVerifier: "verifier",
	// The host's site policy has resumption off.
	rejectDisabled: "disabled",
}

func (r rejection) String() string { return rejectionReasons[r] }

// ticketBinding is what a ticket is bound to besides its key.
type ticketBinding struct {
	realm       [32]byte
	realmHint   uint16
	acrossHosts bool
	lifetime    int64 // seconds
	// sites, when set, gives some host names their own lifetime, or no
	// resumption; their tickets are bound to their rule (sites.go).
	sites *siteRules
}

// siteFor returns the site rule of sni, nil for the binding's defaults.
func (b *ticketBinding) siteFor(sni string) *siteRule {
	if b.sites == nil {
		return nil
	}
	r := b.sites.rule(sni)
	if r == b.sites.def {
		return nil
	}
	return r
}

// realmHintFor is the realm hint of tickets under site rule r.
func (b *ticketBinding) realmHintFor(r *siteRule) uint16 {
	if r == nil {
		return b.realmHint
	}
	return b.realmHint ^ binary.BigEndian.Uint16(r.tag[:2]) ^ 1
}

// openedTicket is what a valid ticket holds.
type openedTicket struct {
	// state is the SessionState encoding; it aliases a fresh buffer.
	state []byte
	// authAt is when the client last completed a full handshake, Unix
	// seconds.
	authAt int64
}

// sealTicket seals state (SessionState.Bytes) under k at now for sni;
// authAt is when the session's client last completed a full handshake.
func (b *ticketBinding) sealTicket(k *keyring.TicketKey, now, authAt time.Time, sni string, state []byte) ([]byte, error) {
	out := make([]byte, ticketHeaderLen, ticketHeaderLen+timesLen+len(state)+ticketTagLen)
	site := b.siteFor(sni)
	out[0] = ticketVersion
	binary.BigEndian.PutUint32(out[1:5], k.ID)
	binary.BigEndian.PutUint16(out[5:7], b.realmHintFor(site))
	binary.BigEndian.PutUint16(out[7:9], b.hostHint(sni))
	var nonce [ticketNonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	copy(out[9:ticketHeaderLen], nonce[:])

	// Lay the plaintext out after the header and encrypt it in place.
	out = binary.BigEndian.AppendUint64(out, uint64(now.Unix()))
	out = binary.BigEndian.AppendUint64(out, uint64(authAt.Unix()))
	out = append(out, state...)
	var aadBuf [ticketHeaderLen + 32 + 8 + maxSNILen]byte
	aad := b.aad(aadBuf[:0], out[:ticketHeaderLen], site, sni)
	return k.AEAD.Seal(out[:ticketHeaderLen], nonce[:], out[ticketHeaderLen:], aad), nil
}

// openTicket returns what ticket holds, or why it must not resume. It never
// modifies ticket.
func (b *ticketBinding) openTicket(r *keyring.Snapshot, ticket []byte, now time.Time, sni string) (openedTicket, rejection) {
	if len(ticket) > 0 && ticket[0] == 0 {
		return openedTicket{}, placeholderRejection(ticket)
	}
	if len(ticket) < ticketMinLen || ticket[0] != ticketVersion {
		return openedTicket{}, rejectMalformed
	}
	if r == nil {
		return openedTicket{}, rejectNoRing
	}
	k := r.Key(binary.BigEndian.Uint32(ticket[1:5]))
	if k == nil {
		return openedTicket{}, rejectUnknownKey
	}
	if !k.Expire.IsZero() && now.After(k.Expire) {
		return openedTicket{}, rejectRetiredKey
	}
	site := b.siteFor(sni)
	lifetime := b.lifetime
	if site != nil {
		if site.off {
			return openedTicket{}, rejectDisabled
		}
		lifetime = site.lifetime
	}
	if binary.BigEndian.Uint16(ticket[5:7]) != b.realmHintFor(site) {
		return openedTicket{}, rejectWrongRealm
	}
	if binary.BigEndian.Uint16(ticket[7:9]) != b.hostHint(sni) {
		return openedTicket{}, rejectWrongHost
	}
	var aadBuf [ticketHeaderLen + 32 + 8 + maxSNILen]byte
	aad := b.aad(aadBuf[:0], ticket[:ticketHeaderLen], site, sni)
	plain, err := k.AEAD.Open(nil, ticket[9:ticketHeaderLen], ticket[ticketHeaderLen:], aad)
	if err != nil {
		return openedTicket{}, rejectTampered
	}
	issued := int64(binary.BigEndian.Uint64(plain[:8]))
	authAt := int64(binary.BigEndian.Uint64(plain[8:timesLen]))
	nowUnix := now.Unix()
	switch {
	case issued > nowUnix+int64(allowedFutureSkew/time.Second):
		return openedTicket{}, rejectNotYetValid
	case authAt > issued:
		// Only a bug of ours could seal this; never trust it.
		return openedTicket{}, rejectBadState
	// The lifetime bounds the age of the authentication, not of this
	// ticket: a session resumed over and over still needs a full
	// handshake once the lifetime has passed since the last one.
	case nowUnix-authAt > lifetime:
		return openedTicket{}, rejectExpired
	// Invalidation ends sessions, so it too applies to the
	// authentication: a ticket re-issued after the invalidation time to a
	// session authenticated before it is refused as well.
	case authAt < r.InvalidatedBefore:
		return openedTicket{}, rejectInvalidated
	}
	return openedTicket{state: plain[timesLen:], authAt: authAt}, accepted
}

func (b *ticketBinding) aad(dst, header []byte, site *siteRule, sni string) []byte {
	dst = append(dst, header...)
	dst = append(dst, b.realm[:]...)
	if site != nil {
		dst = append(dst, site.tag[:]...)
	}
	if !b.acrossHosts {
		dst = appendLowerASCII(dst, sni)
	}
	return dst
}

// hostHint is a 16-bit FNV-1a of the lower-cased SNI (0 when tickets may
// cross hosts). It only labels refusals; the AEAD does the binding.
func (b *ticketBinding) hostHint(sni string) uint16 {
	if b.acrossHosts {
		return 0
	}
	h := uint32(2166136261)
	for i := 0; i < len(sni) && i < maxSNILen; i++ {
		c := sni[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint32(c)
		h *= 16777619
	}
	return uint16(h ^ h>>16)
}

func appendLowerASCII(dst []byte, s string) []byte {
	if len(s) > maxSNILen {
		s = s[:maxSNILen]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
