package keyring

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
)

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

// ErrOtherKEK means the stored ring was sealed under a KEK this node does
// not have.
var ErrOtherKEK = errors.New("ring sealed under another key-encryption key")

// errRingCorrupt means the stored ring failed to parse or authenticate.
var errRingCorrupt = errors.New("ring document corrupt or tampered with")

// Seal encrypts doc under kek. name is the ring's name, bound into the
// authentication so one ring's document cannot stand in for another's.
func Seal(doc *Document, kek *KEK, name string) ([]byte, error) {
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

// Open decrypts a stored ring with the first of keks that it was sealed
// under, and reports which one (its index) opened it. It returns
// ErrOtherKEK when none of keks matches the document's KEK ID, and
// errRingCorrupt when the document does not parse or authenticate.
func Open(data []byte, keks []*KEK, name string) (*Document, int, error) {
	var env ringEnvelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, -1, fmt.Errorf("%w: %v", errRingCorrupt, err)
	}
	if env.Format != ringFormat {
		return nil, -1, fmt.Errorf("%w: unknown format %q", errRingCorrupt, env.Format)
	}
	for i, kek := range keks {
		if kek.id != env.KEKID {
			continue
		}
		if len(env.Nonce) != kek.aead.NonceSize() {
			return nil, -1, fmt.Errorf("%w: bad nonce length", errRingCorrupt)
		}
		plain, err := kek.aead.Open(nil, env.Nonce, env.Sealed, ringAAD(env.KEKID, name))
		if err != nil {
			return nil, -1, fmt.Errorf("%w: authentication failed under KEK %s", errRingCorrupt, kek.id)
		}
		var doc Document
		err = json.Unmarshal(plain, &doc)
		clear(plain)
		if err != nil {
			return nil, -1, fmt.Errorf("%w: %v", errRingCorrupt, err)
		}
		if err := doc.validate(); err != nil {
			return nil, -1, fmt.Errorf("%w: %v", errRingCorrupt, err)
		}
		return &doc, i, nil
	}
	return nil, -1, fmt.Errorf("%w (document KEK ID %s)", ErrOtherKEK, env.KEKID)
}

// peekKEKID returns the KEK ID a stored ring claims, for log messages.
func peekKEKID(data []byte) string {
	var env ringEnvelope
	if json.Unmarshal(data, &env) != nil {
		return ""
	}
	return env.KEKID
}

func ringAAD(kekID, name string) []byte {
	return []byte(ringFormat + "\x00" + kekID + "\x00" + name)
}
