package tlsresume

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"hash"
	"slices"

	"github.com/caddyserver/caddy/v2/modules/caddytls"
)

// realmDigest identifies a connection policy's client-authentication
// configuration. Tickets are bound to it, so a session authenticated under
// one policy never resumes under another that trusts different CAs, pins
// other leaves or authenticates clients differently.
//
// Caddy zeroes a module's raw JSON once it is loaded, so the digest is built
// from what survives provisioning and is identical on every node running the
// same configuration: the tls.Config's ClientAuth and ClientCAs (the pool's
// subjects, sorted), and the policy's exported Mode and leaf pins. Verifier
// modules need no digest: they run again on every resumed handshake.
func realmDigest(pol *caddytls.ConnectionPolicy) [32]byte {
	h := sha256.New()
	writeField(h, []byte("caddy-tlsresume realm v1"))
	cfg := pol.TLSConfig
	var clientAuth tls.ClientAuthType
	if cfg != nil {
		clientAuth = cfg.ClientAuth
	}
	writeField(h, binary.BigEndian.AppendUint32(nil, uint32(clientAuth)))

	var subjects [][]byte
	if cfg != nil && cfg.ClientCAs != nil {
		//lint:ignore SA1019 Subjects is exact for the pools Caddy builds
		// (from certificates it loaded, never the system pool), and it is
		// the only view of a pool's contents.
		subjects = cfg.ClientCAs.Subjects()
		slices.SortFunc(subjects, bytes.Compare)
	}
	writeField(h, binary.BigEndian.AppendUint32(nil, uint32(len(subjects))))
	for _, s := range subjects {
		writeField(h, s)
	}

	if ca := pol.ClientAuthentication; ca != nil {
		writeField(h, []byte(ca.Mode))
		// Deprecated in Caddy but still honoured by it, so part of the realm.
		//lint:ignore SA1019 still enforced by Caddy
		writeSortedStrings(h, ca.TrustedCACerts)
		//lint:ignore SA1019 still enforced by Caddy
		writeSortedStrings(h, ca.TrustedLeafCerts)
	} else {
		writeField(h, nil)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func writeSortedStrings(h hash.Hash, vals []string) {
	sorted := slices.Clone(vals)
	slices.Sort(sorted)
	writeField(h, binary.BigEndian.AppendUint32(nil, uint32(len(sorted))))
	for _, v := range sorted {
		writeField(h, []byte(v))
	}
}

// writeField writes a length-prefixed field so that no two different
// configurations can produce the same byte stream.
func writeField(h hash.Hash, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// realmHintOf is the 16-bit realm label written in clear in tickets.
func realmHintOf(realm [32]byte) uint16 {
	return binary.BigEndian.Uint16(realm[:2])
}
