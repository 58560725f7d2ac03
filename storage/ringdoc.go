package storage

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// RingDocument is the plaintext of the fleet-wide ticket-key ring. It is
// never written as is: SealRing encrypts and authenticates it under the
// key-encryption key (KEK) before it reaches storage.
type RingDocument struct {
	// Version increases by one on every write; nodes compare it to decide
	// whether to reload, and the rotating node checks it under the lock.
	Version uint64 `json:"version"`
	// Updated is when the document was last written.
	Updated time.Time `json:"updated"`
	// Keys are the ticket keys, sorted by activation time.
	Keys []RingKey `json:"keys"`
	// InvalidatedBefore, when set, makes every ticket issued before it
	// unusable on every node (the admin API's invalidate).
	InvalidatedBefore time.Time `json:"invalidated_before,omitzero"`
	// Denied lists client certificates that must not resume (or connect)
	// anywhere in the fleet (the admin API's revoke).
	Denied []DeniedCert `json:"denied,omitempty"`
	// Rotations counts the rotations recorded in this ring's history.
	Rotations uint64 `json:"rotations"`
}

// RingKey is one ticket-sealing key. A key is published (distributed to
// every node) before it activates; it seals tickets from Activate until the
// next key activates, and opens them until no ticket it sealed can still be
// accepted.
type RingKey struct {
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
	// Without it the entry is kept for DenyRetention after Added.
	NotAfter time.Time `json:"not_after,omitzero"`
}

// DenyRetention is how long a deny-list entry whose certificate's expiry is
// unknown (revoked by fingerprint or by issuer and serial, without
// not_after) is kept: longer than the 398 days public CAs may issue for,
// and than the year most private client CAs use.
const DenyRetention = 400 * 24 * time.Hour

// Ends returns when the entry may be dropped from the deny list.
func (d DeniedCert) Ends() time.Time {
	if !d.NotAfter.IsZero() {
		return d.NotAfter
	}
	return d.Added.Add(DenyRetention)
}

// SameCertificate reports whether d and o name the same certificate.
func (d DeniedCert) SameCertificate(o DeniedCert) bool {
	return d.SHA256 == o.SHA256 && d.IssuerSHA256 == o.IssuerSHA256 && d.Serial == o.Serial
}

// KEKSize is the size of a key-encryption key in bytes.
const KEKSize = 32

// ringFormat names the envelope format; it is authenticated with the
// ciphertext so a document cannot be replayed as another kind.
const ringFormat = "caddy-tlsresume ring v1"

// ringEnvelope is what is stored: the sealed document plus what a node needs
// to tell "another KEK" from "corrupted".
type ringEnvelope struct {
	Format string `json:"format"`
	// KEKID identifies (without revealing) the KEK the document is sealed
	// under.
	KEKID  string `json:"kek_id"`
	Nonce  []byte `json:"nonce"`
	Sealed []byte `json:"sealed"`
}

// KEK is a key-encryption key ready for use.
type KEK struct {
	id   string
	aead cipher.AEAD
}

// NewKEK derives the ring-sealing cipher from 32 bytes of key material.
func NewKEK(material []byte) (*KEK, error) {
	if len(material) != KEKSize {
		return nil, fmt.Errorf("key-encryption key must be %d bytes, got %d", KEKSize, len(material))
	}
	// Separate the identifier from the encryption key so the published ID
	// says nothing about the key itself.
	encKey, err := hkdf.Key(sha256.New, material, nil, "caddy-tlsresume ring encryption", 32)
	if err != nil {
		return nil, err
	}
	idKey, err := hkdf.Key(sha256.New, material, nil, "caddy-tlsresume kek id", 8)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &KEK{id: hex.EncodeToString(idKey), aead: aead}, nil
}

// ID returns the KEK's public identifier.
func (k *KEK) ID() string { return k.id }

// ErrOtherKEK means the stored ring was sealed under a KEK this node does
// not have.
var ErrOtherKEK = errors.New("ring sealed under another key-encryption key")

// ErrRingCorrupt means the stored ring failed to parse or authenticate.
var ErrRingCorrupt = errors.New("ring document corrupt or tampered with")

// SealRing encrypts doc under kek. name is the ring's name, bound into the
// authentication so one ring's document cannot stand in for another's.
func SealRing(doc *RingDocument, kek *KEK, name string) ([]byte, error) {
	plain, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	env := ringEnvelope{Format: ringFormat, KEKID: kek.id, Nonce: make([]byte, kek.aead.NonceSize())}
	if _, err := rand.Read(env.Nonce); err != nil {
		return nil, err
	}
	env.Sealed = kek.aead.Seal(nil, env.Nonce, plain, ringAAD(env.KEKID, name))
	clear(plain)
	return json.Marshal(env)
}

// OpenRing decrypts a stored ring with the first of keks that it was sealed
// under, and reports which one (its index) opened it. It returns
// ErrOtherKEK when none of keks matches the document's KEK ID, and
// ErrRingCorrupt when the document does not parse or authenticate.
func OpenRing(data []byte, keks []*KEK, name string) (*RingDocument, int, error) {
	var env ringEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, -1, fmt.Errorf("%w: %v", ErrRingCorrupt, err)
	}
	if env.Format != ringFormat {
		return nil, -1, fmt.Errorf("%w: unknown format %q", ErrRingCorrupt, env.Format)
	}
	for i, kek := range keks {
		if kek.id != env.KEKID {
			continue
		}
		if len(env.Nonce) != kek.aead.NonceSize() {
			return nil, -1, fmt.Errorf("%w: bad nonce length", ErrRingCorrupt)
		}
		plain, err := kek.aead.Open(nil, env.Nonce, env.Sealed, ringAAD(env.KEKID, name))
		if err != nil {
			return nil, -1, fmt.Errorf("%w: authentication failed under KEK %s", ErrRingCorrupt, kek.id)
		}
		var doc RingDocument
		err = json.Unmarshal(plain, &doc)
		clear(plain)
		if err != nil {
			return nil, -1, fmt.Errorf("%w: %v", ErrRingCorrupt, err)
		}
		if err := doc.validate(); err != nil {
			return nil, -1, fmt.Errorf("%w: %v", ErrRingCorrupt, err)
		}
		return &doc, i, nil
	}
	return nil, -1, fmt.Errorf("%w (document KEK ID %s)", ErrOtherKEK, env.KEKID)
}

// PeekKEKID returns the KEK ID a stored ring claims, for log messages.
func PeekKEKID(data []byte) string {
	var env ringEnvelope
	if json.Unmarshal(data, &env) != nil {
		return ""
	}
	return env.KEKID
}

func ringAAD(kekID, name string) []byte {
	return []byte(ringFormat + "\x00" + kekID + "\x00" + name)
}

// TicketKeySize is the size of a ticket key's secret.
const TicketKeySize = 32

func (d *RingDocument) validate() error {
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

// Zero overwrites every key secret in the document.
func (d *RingDocument) Zero() {
	for i := range d.Keys {
		clear(d.Keys[i].Secret)
	}
}

// Clone returns a deep copy of the document.
func (d *RingDocument) Clone() *RingDocument {
	c := *d
	c.Keys = make([]RingKey, len(d.Keys))
	for i, k := range d.Keys {
		k.Secret = append([]byte(nil), k.Secret...)
		c.Keys[i] = k
	}
	c.Denied = append([]DeniedCert(nil), d.Denied...)
	return &c
}

// HasKey reports whether the ring holds a key with the given ID.
func (d *RingDocument) HasKey(id uint32) bool {
	for _, k := range d.Keys {
		if k.ID == id {
			return true
		}
	}
	return false
}
