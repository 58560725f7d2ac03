package upstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// identityInput is everything that decides whether a session one transport
// stored may be offered by another: the client identity presented to the
// upstream and the settings the upstream's certificate was verified under.
// Two transports whose inputs are equal may resume each other's sessions
// (for the same server name); any difference keeps them apart.
type identityInput struct {
	// Protocol is "tcp" (TLS over TCP) or "quic" (HTTP/3). QUIC sessions
	// carry transport parameters and must not be offered over TCP, nor the
	// other way round.
	Protocol string

	// InsecureSkipVerify: a session made without verifying the upstream is
	// never offered by a transport that verifies (Go also refuses it).
	InsecureSkipVerify bool

	// ClientChains holds the DER chain of every configured client
	// certificate. A changed client certificate starts new sessions, so an
	// upstream never sees a session that carries a replaced identity.
	ClientChains [][][]byte

	// ClientAutomate is the name of a Caddy-managed client certificate
	// (tls_client_auth <name>), whose chain is chosen per handshake.
	ClientAutomate string

	// Roots is the trust configuration as written (the ca module,
	// root_ca_pool and root_ca_pem_files), compacted; empty means the
	// system roots. On every resumption Go also re-verifies the session's
	// stored chain against the live RootCAs, so a CA file whose contents
	// changed behind the same path cannot keep a session alive either.
	Roots []byte
}

// identityDigest returns a fixed-size digest of in, used as the identity
// part of every cache key. Fields are length-prefixed so that distinct
// inputs never serialize alike.
func identityDigest(in identityInput) string {
	h := sha256.New()
	writeField(h, []byte("caddy-tlsresume upstream session identity v1"))
	writeField(h, []byte(in.Protocol))
	if in.InsecureSkipVerify {
		writeField(h, []byte{1})
	} else {
		writeField(h, []byte{0})
	}
	writeCount(h, len(in.ClientChains))
	for _, chain := range in.ClientChains {
		writeCount(h, len(chain))
		for _, der := range chain {
			writeField(h, der)
		}
	}
	writeField(h, []byte(in.ClientAutomate))
	writeField(h, in.Roots)
	return string(h.Sum(nil))
}

func writeCount(h hash.Hash, n int) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
}

func writeField(h hash.Hash, p []byte) {
	writeCount(h, len(p))
	h.Write(p)
}

// trustConfig captures the upstream trust settings of tc as written, before
// provisioning: Caddy clears a module's raw JSON (the ca field) once it has
// loaded it. Equal configurations give equal bytes on every node.
func trustConfig(tc *reverseproxy.TLSConfig) []byte {
	if tc == nil {
		return nil
	}
	//lint:ignore SA1019 Caddy still honours the deprecated root_ca_pool and root_ca_pem_files, so they are part of the trust settings
	pool, files := tc.RootCAPool, tc.RootCAPEMFiles
	if len(tc.CARaw) == 0 && len(pool) == 0 && len(files) == 0 {
		return nil
	}
	var ca bytes.Buffer
	if len(tc.CARaw) > 0 {
		if err := json.Compact(&ca, tc.CARaw); err != nil {
			// Not valid JSON: provisioning will reject it; keep the raw
			// bytes so the digest stays deterministic meanwhile.
			ca.Reset()
			ca.Write(tc.CARaw)
		}
	}
	b, _ := json.Marshal(struct {
		CA    []byte   `json:"ca,omitempty"`
		Pool  []string `json:"root_ca_pool,omitempty"`
		Files []string `json:"root_ca_pem_files,omitempty"`
	}{ca.Bytes(), pool, files})
	return b
}
