package keyring

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/caddyserver/certmagic"
)

// localRing is this node's last-known-good copy of the ring, on local disk
// (Caddy's data directory, never the shared storage), sealed under the
// node's KEK like the shared document. After a restart the node starts
// from it: it never installs a ring older than it, and never forgets a
// revocation it held, whatever the shared storage then holds (deleted,
// corrupted, or rolled back to an older authentic document).
type localRing struct {
	path string
	name string // the ring's name, bound into the seal
}

// newLocalRing places the copy of ring name kept in st under dir. The file
// name carries a digest of the storage's identity, so rings of the same
// name in different storages (two Caddy configs, or two test fleets on one
// machine) keep separate copies.
func newLocalRing(dir, name string, st certmagic.Storage) *localRing {
	var id string
	if s, ok := st.(fmt.Stringer); ok {
		id = s.String()
	} else {
		id = fmt.Sprintf("%T", st)
	}
	sum := sha256.Sum256([]byte(id))
	file := name + "-" + hex.EncodeToString(sum[:6]) + ".json"
	return &localRing{path: filepath.Join(dir, "tls_resume", "last-known", file), name: name}
}

// load opens the copy; errNoRing means there is none.
func (l *localRing) load(keks []*KEK) (*Document, error) {
	data, err := os.ReadFile(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoRing
	}
	if err != nil {
		return nil, err
	}
	doc, _, err := Open(data, keks, l.name)
	return doc, err
}

// save replaces the copy with doc, atomically (a crash leaves the old copy
// or the new one, never half of one).
func (l *localRing) save(doc *Document, kek *KEK) error {
	sealed, err := Seal(doc, kek, l.name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(l.path), ".ring-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(sealed); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), l.path)
}
