package keyring

import (
	"errors"
	"fmt"
	"time"
)

// Document is the plaintext of the fleet-wide ticket-key ring. It is
// never written as is: Seal encrypts and authenticates it under the
// key-encryption key (KEK) before it reaches storage.
type Document struct {
	// Version increases by one on every write; nodes compare it to decide
	// whether to reload, and the rotating node checks it under the lock.
	Version uint64 `json:"version"`
	// Updated is when the document was last written.
	Updated time.Time `json:"updated"`
	// Keys are the ticket keys, sorted by activation time.
	Keys []Key `json:"keys"`
	// InvalidatedBefore, when set, makes every ticket issued before it
	// unusable on every node (the admin API's invalidate).
	InvalidatedBefore time.Time `json:"invalidated_before,omitzero"`
	// Denied lists client certificates that must not resume (or connect)
	// anywhere in the fleet (the admin API's revoke).
	Denied []DeniedCert `json:"denied,omitempty"`
	// Rotations counts the rotations recorded in this ring's history.
	Rotations uint64 `json:"rotations"`
}

// Key is one ticket-sealing key. A key is published (distributed to
// every node) before it activates; it seals tickets from Activate until the
// next key activates, and opens them until no ticket it sealed can still be
// accepted.
type Key struct {
	ID        uint32    `json:"id"`
	Secret    []byte    `json:"secret"`
	Published time.Time `json:"published"`
	Activate  time.Time `json:"activate"`
}

// DeniedCert identifies a revoked client certificate, by the SHA-256 of its
// DER encoding, or by issuer and serial number.
type DeniedCert struct {
	// SHA256 is the lowercase hex SHA-256 of the leaf's DER encoding.
	SHA256 string `json:"sha256,omitempty"`
	// IssuerSHA256 is the lowercase hex SHA-256 of the issuer's raw
	// subject (the leaf's RawIssuer), with Serial the decimal serial.
	IssuerSHA256 string    `json:"issuer_sha256,omitempty"`
	Serial       string    `json:"serial,omitempty"`
	Added        time.Time `json:"added"`
	Reason       string    `json:"reason,omitempty"`
	// NotAfter is when the certificate expires, when it is known: the
	// entry is dropped then (an expired certificate is refused anyway).
	// Without it the entry is kept for denyRetention after Added.
	NotAfter time.Time `json:"not_after,omitzero"`
}

// denyRetention is how long a deny-list entry whose certificate's expiry is
// unknown (revoked by fingerprint or by issuer and serial, without
// not_after) is kept: longer than the 398 days public CAs may issue for,
// and than the year most private client CAs use.
const denyRetention = 400 * 24 * time.Hour

// ends returns when the entry may be dropped from the deny list.
func (d DeniedCert) ends() time.Time {
	if !d.NotAfter.IsZero() {
		return d.NotAfter
	}
	return d.Added.Add(denyRetention)
}

// TicketKeySize is the size of a ticket key's secret.
const TicketKeySize = 32

func (d *Document) validate() error {
	seen := make(map[uint32]bool, len(d.Keys))
	for i, k := range d.Keys {
		if len(k.Secret) != TicketKeySize {
			return fmt.Errorf("key %08x: secret is %d bytes", k.ID, len(k.Secret))
		}
		if seen[k.ID] {
			return fmt.Errorf("duplicate key ID %08x", k.ID)
		}
		seen[k.ID] = true
		if i > 0 && k.Activate.Before(d.Keys[i-1].Activate) {
			return errors.New("keys not sorted by activation")
		}
	}
	return nil
}

// zero overwrites every key secret in the document.
func (d *Document) zero() {
	for i := range d.Keys {
		clear(d.Keys[i].Secret)
	}
}

// Clone returns a deep copy of the document.
func (d *Document) Clone() *Document {
	c := *d
	c.Keys = make([]Key, len(d.Keys))
	for i, k := range d.Keys {
		k.Secret = append([]byte(nil), k.Secret...)
		c.Keys[i] = k
	}
	c.Denied = append([]DeniedCert(nil), d.Denied...)
	return &c
}

// hasKey reports whether the ring holds a key with the given ID.
func (d *Document) hasKey(id uint32) bool {
	for _, k := range d.Keys {
		if k.ID == id {
			return true
		}
	}
	return false
}
