package tlsresume

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/tlsresume/caddy-tlsresume/storage"
)

// GenerateKEK returns a new key-encryption key in the form the kek option
// takes: 32 random bytes, standard base64.
func GenerateKEK() (string, error) {
	b := make([]byte, storage.KEKSize)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeKEK decodes a key-encryption key in the form GenerateKEK returns
// (surrounding whitespace ignored): what the kek option holds once its
// placeholders are replaced. Errors never echo key material.
func DecodeKEK(s string) (*storage.KEK, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not standard base64")
	}
	kek, err := storage.NewKEK(raw)
	clear(raw)
	return kek, err
}

// parseKEK resolves placeholders in a configured KEK and decodes it. Errors
// name the option but never echo key material.
func parseKEK(option, configured string) (*storage.KEK, error) {
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

// defaultKEKPath is where a single node keeps its generated KEK.
func defaultKEKPath() string {
	return filepath.Join(caddy.AppDataDir(), "tls_resume", "kek")
}

// loadOrCreateLocalKEK reads the node-local KEK, generating it (mode 0600)
// on first use. It reports whether it created the file.
func loadOrCreateLocalKEK(path string) (*storage.KEK, bool, error) {
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
			kek, err := parseKEK("kek (generated "+path+")", enc)
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
	kek, err := parseKEK("kek (from "+path+")", string(data))
	return kek, false, err
}
