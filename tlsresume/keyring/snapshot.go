package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/certid"
)

// Snapshot is an immutable, ready-to-use view of a ring document: AEADs
// built, expiries computed, deny lists indexed. Handshakes read the current
// snapshot through a Holder, so they take no lock; nothing in it may be
// modified once it is published.
type Snapshot struct {
	Version uint64
	keys    []TicketKey // sorted by activation

	// InvalidatedBefore is Unix seconds; tickets issued earlier are refused.
	InvalidatedBefore int64

	deniedLeaves       map[certid.Fingerprint]struct{}
	deniedIssuerSerial map[string]struct{} // hex(SHA-256(RawIssuer)) + "/" + decimal serial
}

// TicketKey is one ticket key of a Snapshot, ready to seal and open.
type TicketKey struct {
	ID       uint32
	Activate time.Time
	// Expire is when the key stops opening tickets; zero while it seals
	// or is staged.
	Expire time.Time
	AEAD   cipher.AEAD
}

// NewSnapshot builds a snapshot from doc under sched. doc's revocations must
// already include every one this node has seen (see mergeRevocations).
func NewSnapshot(doc *Document, sched Schedule) (*Snapshot, error) {
	r := &Snapshot{Version: doc.Version, keys: make([]TicketKey, 0, len(doc.Keys))}
	for i, k := range doc.Keys {
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("ticket key %08x: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		r.keys = append(r.keys, TicketKey{ID: k.ID, Activate: k.Activate, Expire: sched.KeyExpiry(doc, i), AEAD: aead})
	}
	if !doc.InvalidatedBefore.IsZero() {
		r.InvalidatedBefore = doc.InvalidatedBefore.Unix()
	}
	for _, d := range doc.Denied {
		if d.SHA256 != "" {
			if sum, err := certid.ParseFingerprint(d.SHA256); err == nil {
				if r.deniedLeaves == nil {
					r.deniedLeaves = make(map[certid.Fingerprint]struct{})
				}
				r.deniedLeaves[sum] = struct{}{}
			}
		}
		if d.IssuerSHA256 != "" && d.Serial != "" {
			if r.deniedIssuerSerial == nil {
				r.deniedIssuerSerial = make(map[string]struct{})
			}
			r.deniedIssuerSerial[d.IssuerSHA256+"/"+d.Serial] = struct{}{}
		}
	}
	return r, nil
}

// SealingKey returns the key that seals tickets at now: the newest key that
// has activated. A node whose clock runs behind the ring's first activation
// uses the first key, which every node already has.
func (r *Snapshot) SealingKey(now time.Time) *TicketKey {
	if len(r.keys) == 0 {
		return nil
	}
	k := &r.keys[0]
	for i := 1; i < len(r.keys); i++ {
		if r.keys[i].Activate.After(now) {
			break
		}
		k = &r.keys[i]
	}
	return k
}

// Key returns the key with the given ID, or nil.
func (r *Snapshot) Key(id uint32) *TicketKey {
	for i := range r.keys {
		if r.keys[i].ID == id {
			return &r.keys[i]
		}
	}
	return nil
}

// HasDenials reports whether the deny list has any entry.
func (r *Snapshot) HasDenials() bool {
	return r.deniedLeaves != nil || r.deniedIssuerSerial != nil
}

// Denies reports whether the leaf certificate is on the fleet's deny list.
// With an empty deny list it costs nothing.
func (r *Snapshot) Denies(leaf *x509.Certificate) bool {
	if !r.HasDenials() {
		return false
	}
	if r.deniedLeaves != nil {
		if _, ok := r.deniedLeaves[certid.Of(leaf.Raw)]; ok {
			return true
		}
	}
	if r.deniedIssuerSerial != nil {
		if _, ok := r.deniedIssuerSerial[issuerSerialKey(leaf.RawIssuer, leaf.SerialNumber.String())]; ok {
			return true
		}
	}
	return false
}

// issuerSerialKey is the deny-list key for a certificate named by issuer
// and serial: the hex SHA-256 of the issuer's DER-encoded name, a slash and
// the decimal serial.
func issuerSerialKey(rawIssuer []byte, decimalSerial string) string {
	return certid.IssuerDigest(rawIssuer) + "/" + decimalSerial
}
