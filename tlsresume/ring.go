package tlsresume

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/certid"
	"github.com/tlsresume/caddy-tlsresume/storage"
)

// ring is an immutable, ready-to-use snapshot of a ring document: AEADs
// built, expiries computed, deny lists indexed. Handshakes read the current
// snapshot through an atomic pointer, so they take no lock.
type ring struct {
	version uint64
	keys    []ringKey // sorted by activation

	// invalidatedBefore is Unix seconds; tickets issued earlier are refused.
	invalidatedBefore int64

	deniedLeaves       map[certid.Fingerprint]struct{}
	deniedIssuerSerial map[string]struct{} // hex(SHA-256(RawIssuer)) + "/" + decimal serial
}

type ringKey struct {
	id       uint32
	activate time.Time
	// expire is when the key stops opening tickets; zero while it seals
	// or is staged.
	expire time.Time
	aead   cipher.AEAD
}

// newRing builds a snapshot from doc under sched. doc's revocations must
// already include every one this node has seen (see mergeRevocations).
func newRing(doc *storage.RingDocument, sched Schedule) (*ring, error) {
	r := &ring{version: doc.Version, keys: make([]ringKey, 0, len(doc.Keys))}
	for i, k := range doc.Keys {
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("ticket key %08x: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		r.keys = append(r.keys, ringKey{id: k.ID, activate: k.Activate, expire: sched.keyExpiry(doc, i), aead: aead})
	}
	if !doc.InvalidatedBefore.IsZero() {
		r.invalidatedBefore = doc.InvalidatedBefore.Unix()
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

// sealingKey returns the key that seals tickets at now: the newest key that
// has activated. A node whose clock runs behind the ring's first activation
// uses the first key, which every node already has.
func (r *ring) sealingKey(now time.Time) *ringKey {
	if len(r.keys) == 0 {
		return nil
	}
	k := &r.keys[0]
	for i := 1; i < len(r.keys); i++ {
		if r.keys[i].activate.After(now) {
			break
		}
		k = &r.keys[i]
	}
	return k
}

// key returns the key with the given ID, or nil.
func (r *ring) key(id uint32) *ringKey {
	for i := range r.keys {
		if r.keys[i].id == id {
			return &r.keys[i]
		}
	}
	return nil
}

// hasDenials reports whether the deny list has any entry.
func (r *ring) hasDenials() bool {
	return r.deniedLeaves != nil || r.deniedIssuerSerial != nil
}

// denies reports whether the leaf certificate is on the fleet's deny list.
// With an empty deny list it costs nothing.
func (r *ring) denies(leaf *x509.Certificate) bool {
	if !r.hasDenials() {
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
