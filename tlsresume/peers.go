package tlsresume

import (
	"crypto/tls"
	"crypto/x509"
	"reflect"
	"sync"

	"golang.org/x/crypto/cryptobyte"
)

// sessionPeers reads the client certificates a serialized SessionState
// carries: the chain the client presented on its last full handshake
// (leaf first) and the chains Go verified then. UnwrapSession must check
// them before it accepts a ticket, and Go keeps them in private fields, so
// they are read from the encoding (crypto/tls ticket.go), whose layout up
// to these fields is stable: Go extends it only by appending fields.
//
//	uint16 version; uint8 type; uint16 cipher_suite; uint64 created_at;
//	opaque secret<1..2^8-1>; Extra extra<0..2^24-1>;
//	uint8 ext_master_secret; uint8 early_data;
//	CertificateEntry certificate_list<0..2^24-1>;
//	CertificateChain verified_chains<0..2^24-1>; /* excluding leaf */
//	...
//
// Certificates are parsed through certs, so a returning client costs a
// lookup, not a parse. ok is false for an encoding that does not parse,
// which the caller treats as a bad ticket.
func sessionPeers(state []byte, certs *certCache) (peers []*x509.Certificate, chains [][]*x509.Certificate, ok bool) {
	s := cryptobyte.String(state)
	var (
		version, suite uint16
		typ, ems, ed   uint8
		created        uint64
		secret, extra  cryptobyte.String
		certList       cryptobyte.String
		chainList      cryptobyte.String
	)
	if !s.ReadUint16(&version) || !s.ReadUint8(&typ) || !s.ReadUint16(&suite) ||
		!s.ReadUint64(&created) || !s.ReadUint8LengthPrefixed(&secret) ||
		!s.ReadUint24LengthPrefixed(&extra) || !s.ReadUint8(&ems) || !s.ReadUint8(&ed) ||
		!s.ReadUint24LengthPrefixed(&certList) || !s.ReadUint24LengthPrefixed(&chainList) {
		return nil, nil, false
	}
	if typ != 1 { // a server-side session
		return nil, nil, false
	}
	// Count first, so that each slice is allocated once, at its size.
	nPeers, nChains, nChainCerts, ok := countPeers(certList, chainList)
	if !ok {
		return nil, nil, false
	}
	if nPeers == 0 {
		return nil, nil, nChains == 0
	}
	peers = make([]*x509.Certificate, 0, nPeers)
	for !certList.Empty() {
		var der, exts cryptobyte.String
		certList.ReadUint24LengthPrefixed(&der)
		certList.ReadUint16LengthPrefixed(&exts)
		c, err := certs.get(der)
		if err != nil {
			return nil, nil, false
		}
		peers = append(peers, c)
	}
	if nChains == 0 {
		return peers, nil, true
	}
	chains = make([][]*x509.Certificate, 0, nChains)
	all := make([]*x509.Certificate, 0, nChains+nChainCerts) // backs every chain
	for !chainList.Empty() {
		var list cryptobyte.String
		chainList.ReadUint24LengthPrefixed(&list)
		first := len(all)
		all = append(all, peers[0])
		for !list.Empty() {
			var der cryptobyte.String
			list.ReadUint24LengthPrefixed(&der)
			c, err := certs.get(der)
			if err != nil {
				return nil, nil, false
			}
			all = append(all, c)
		}
		chains = append(chains, all[first:len(all):len(all)])
	}
	return peers, chains, true
}

// countPeers checks the framing of the certificate list and the verified
// chains and counts their entries (certificates in chains without leaves).
func countPeers(certList, chainList cryptobyte.String) (peers, chains, chainCerts int, ok bool) {
	for !certList.Empty() {
		var der, exts cryptobyte.String
		if !certList.ReadUint24LengthPrefixed(&der) || !certList.ReadUint16LengthPrefixed(&exts) {
			return 0, 0, 0, false
		}
		peers++
	}
	for !chainList.Empty() {
		var list cryptobyte.String
		if !chainList.ReadUint24LengthPrefixed(&list) {
			return 0, 0, 0, false
		}
		chains++
		for !list.Empty() {
			var der cryptobyte.String
			if !list.ReadUint24LengthPrefixed(&der) {
				return 0, 0, 0, false
			}
			chainCerts++
		}
	}
	return peers, chains, chainCerts, true
}

// certCache keeps parsed certificates by their DER encoding, so that the
// checks run on every resumption parse a client's chain once, not on every
// handshake. It is bounded: a full shard drops an arbitrary entry.
// Certificates are immutable once parsed, so sharing them is safe; the key
// is the whole encoding, so a lookup can only return a parse of the same
// bytes.
type certCache struct {
	shards [certCacheShards]certCacheShard
}

const (
	certCacheShards   = 16
	certCacheShardCap = 256 // 4096 certificates in all
)

type certCacheShard struct {
	mu sync.RWMutex
	m  map[string]*x509.Certificate
}

// parsedCerts is the process-wide cache: one client chain serves every
// policy and config.
var parsedCerts = new(certCache)

func (c *certCache) get(der []byte) (*x509.Certificate, error) {
	if len(der) == 0 {
		return x509.ParseCertificate(der) // the parser's error
	}
	// The DER ends with the signature: its last byte is as good as random.
	sh := &c.shards[der[len(der)-1]%certCacheShards]
	sh.mu.RLock()
	cert := sh.m[string(der)] // no allocation for the lookup
	sh.mu.RUnlock()
	if cert != nil {
		return cert, nil
	}
	// Parse a copy: der aliases a buffer another owner may reuse.
	cert, err := x509.ParseCertificate(append([]byte(nil), der...))
	if err != nil {
		return nil, err
	}
	sh.mu.Lock()
	if sh.m == nil {
		sh.m = make(map[string]*x509.Certificate, certCacheShardCap)
	}
	if len(sh.m) >= certCacheShardCap {
		for k := range sh.m {
			delete(sh.m, k)
			break
		}
	}
	sh.m[string(cert.Raw)] = cert
	sh.mu.Unlock()
	return cert, nil
}

// peerCertsField locates SessionState's private peerCertificates slice.
// Only the address of its backing array is read (reflect allows that on an
// unexported field, without unsafe): it identifies the session Go resumes on
// a connection (authage.go). ok is false if a Go release renamed or retyped
// the field; authentication times are then not carried (see authage.go).
var peerCertsField, peerCertsFieldOK = func() ([]int, bool) {
	f, ok := reflect.TypeFor[tls.SessionState]().FieldByName("peerCertificates")
	if !ok || f.Type != reflect.TypeFor[[]*x509.Certificate]() {
		return nil, false
	}
	return f.Index, true
}()

// sessionPeersKey is the address of ss's peer certificate array, which Go
// hands to the connection it resumes (Conn.peerCertificates), or 0.
func sessionPeersKey(ss *tls.SessionState) uintptr {
	if !peerCertsFieldOK {
		return 0
	}
	v := reflect.ValueOf(ss).Elem().FieldByIndex(peerCertsField)
	if v.Len() == 0 {
		return 0
	}
	return v.Pointer()
}

// connPeersKey is the address of a connection's peer certificate array, as
// WrapSession sees it; on a resumed connection it is sessionPeersKey of the
// session that was resumed.
func connPeersKey(cs *tls.ConnectionState) uintptr {
	if len(cs.PeerCertificates) == 0 {
		return 0
	}
	// A pointer converts to an interface without allocating; the slice
	// header would not.
	return reflect.ValueOf(&cs.PeerCertificates[0]).Pointer()
}
