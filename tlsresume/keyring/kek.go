package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"
)

// KEKSize is the size of a key-encryption key in bytes.
const KEKSize = 32

// KEK is a key-encryption key ready for use.
type KEK struct {
	id   string
	aead cipher.AEAD
}

// newKEK derives the ring-sealing cipher from 32 bytes of key material.
func newKEK(material []byte) (*KEK, error) {
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

// GenerateKEK returns a new key-encryption key in the form the kek option
// takes: 32 random bytes, standard base64.
func GenerateKEK() (string, error) {
	b := make([]byte, KEKSize)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeKEK decodes a key-encryption key in the form GenerateKEK returns
// (surrounding whitespace ignored): what the kek option holds once its
// placeholders are replaced. Errors never echo key material.
func DecodeKEK(s string) (*KEK, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not standard base64")
	}
	kek, err := newKEK(raw)
	clear(raw)
	return kek, err
}

// ParseKEK resolves placeholders in a configured KEK and decodes it. Errors
// name the option but never echo key material.
func ParseKEK(option, configured string) (*KEK, error) {
	val, err := caddy.NewReplacer().ReplaceOrErr(configured, true, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", option, err)
	}
	if strings.TrimSpace(val) == "" {
		return nil, fmt.Errorf("%s: empty after replacing placeholders in %q", option, configured)
	}
	kek, err := DecodeKEK(val)
	if err != nil {
		return nil, fmt.Errorf("%s: %v (generate one with `caddy tls-resume keygen`)", option, err)
	}
	return kek, nil
}

// DefaultKEKPath is where a single node keeps its generated KEK: under
// Caddy's data directory.
func DefaultKEKPath() string {
	return filepath.Join(caddy.AppDataDir(), "tls_resume", "kek")
}

// LoadOrCreateLocalKEK reads the node-local KEK, generating it (mode 0600)
// on first use. It reports whether it created the file.
func LoadOrCreateLocalKEK(path string) (*KEK, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, err
		}
		enc, err := GenerateKEK()
		if err != nil {
			return nil, false, err
		}
		// O_EXCL: two processes starting at once must not both win.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			_, werr := f.WriteString(enc + "\n")
			cerr := f.Close()
			if werr != nil || cerr != nil {
				return nil, false, errors.Join(werr, cerr)
			}
			kek, err := ParseKEK("kek (generated "+path+")", enc)
			return kek, true, err
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, false, err
		}
	} else if err != nil {
		return nil, false, err
	}
	kek, err := ParseKEK("kek (from "+path+")", string(data))
	return kek, false, err
}
