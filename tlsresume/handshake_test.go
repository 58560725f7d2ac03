package tlsresume

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddytls"

	"github.com/tlsresume/caddy-tlsresume/internal/certid"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// testServer serves TLS on loopback with a policy bound by bindPolicy.
type testServer struct {
	addr    string
	binding *policyBinding
	rings   *keyring.Holder
	cfg     *tls.Config
	// refuse makes the policy's own VerifyConnection (standing in for
	// Caddy's client_auth verifier modules) refuse every client.
	refuse atomic.Bool
	// verified counts runs of the policy's own VerifyConnection.
	verified atomic.Int64
	// peerCerts is the peer chain length seen by the last connection.
	peerCerts atomic.Int64
}

// Each setup function adjusts the binding before the server listens.
func newTestServer(t testing.TB, set *pki.Set, maxVersion uint16, ring *keyring.Snapshot, setup ...func(*policyBinding)) *testServer {
	t.Helper()
	ts := &testServer{rings: new(keyring.Holder)}
	ts.rings.Store(ring)
	cfg := &tls.Config{
		Certificates: []tls.Certificate{set.Server.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    set.Root.Pool(),
		MaxVersion:   maxVersion,
		// Stock Caddy's setting for client-auth policies; bindPolicy
		// must clear it.
		SessionTicketsDisabled: true,
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		ts.verified.Add(1)
		if ts.refuse.Load() {
			return errors.New("verifier refuses")
		}
		return nil
	}
	pol := &caddytls.ConnectionPolicy{
		TLSConfig:            cfg,
		ClientAuthentication: &caddytls.ClientAuthentication{Mode: "require_and_verify"},
	}
	ts.binding = bindPolicy(pol, "test", ts.rings, bindOptions{lifetime: 10 * time.Minute})
	ts.binding.now = func() time.Time { return t0.Add(time.Minute) }
	for _, f := range setup {
		f(ts.binding)
	}
	ts.cfg = cfg

	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ts.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if tc.Handshake() != nil {
					return
				}
				ts.peerCerts.Store(int64(len(tc.ConnectionState().PeerCertificates)))
				// Answer one byte so the client reads the TLS 1.3 tickets
				// that follow the handshake.
				buf := make([]byte, 1)
				if _, err := io.ReadFull(tc, buf); err == nil {
					_, _ = tc.Write(buf)
				}
			}(c)
		}
	}()
	return ts
}

func clientConfig(set *pki.Set, leaf *pki.Leaf, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		ServerName:         "localhost",
		RootCAs:            set.Root.Pool(),
		Certificates:       []tls.Certificate{leaf.TLSCertificate()},
		ClientSessionCache: cache,
	}
}

// dial connects, exchanges one byte and returns the connection state.
func dial(t testing.TB, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{1}); err != nil {
		return tls.ConnectionState{}, err
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		return tls.ConnectionState{}, err
	}
	return c.ConnectionState(), nil
}

func TestMutualTLSResumption(t *testing.T) {
	for _, kt := range []pki.KeyType{pki.ECDSAP256, pki.RSA2048} {
		set, err := pki.NewSet(kt)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(kt.String()+"/"+tls.VersionName(v), func(t *testing.T) {
				r, _ := testRing(t)
				ts := newTestServer(t, set, v, r)
				cache := tls.NewLRUClientSessionCache(8)
				cfg := clientConfig(set, set.ClientA, cache)

				first, err := dial(t, ts.addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if first.DidResume {
					t.Fatal("first connection resumed")
				}
				second, err := dial(t, ts.addr, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if !second.DidResume {
					t.Fatal("second connection did not resume")
				}
				// The server sees the same client chain on the resumed
				// connection as on the full one.
				if n := ts.peerCerts.Load(); n != 2 {
					t.Errorf("resumed connection exposes %d peer certificates, want 2 (leaf + intermediate)", n)
				}
				// The policy's verifiers ran on both handshakes.
				if n := ts.verified.Load(); n != 2 {
					t.Errorf("policy VerifyConnection ran %d times, want 2", n)
				}
			})
		}
	}
}

func TestResumedHandshakeReverified(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	r, _ := testRing(t)
	ts := newTestServer(t, set, tls.VersionTLS13, r)
	cfg := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
	if _, err := dial(t, ts.addr, cfg); err != nil {
		t.Fatal(err)
	}
	// The verifier's policy changes: the next (resumable) connection must
	// be refused, not resumed past the check.
	ts.refuse.Store(true)
	if cs, err := dial(t, ts.addr, cfg); err == nil {
		t.Fatalf("refused client got a connection (resumed=%v)", cs.DidResume)
	}
}

func TestDeniedCertificateRefused(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	r, doc := testRing(t)
	ts := newTestServer(t, set, tls.VersionTLS13, r)
	cfgA := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
	cfgB := clientConfig(set, set.ClientB, tls.NewLRUClientSessionCache(8))
	for _, cfg := range []*tls.Config{cfgA, cfgB} {
		if _, err := dial(t, ts.addr, cfg); err != nil {
			t.Fatal(err)
		}
	}
	// Revoke A by fingerprint and B by issuer + serial.
	sum := sha256.Sum256(set.ClientA.Cert.Raw)
	d := doc.Clone()
	d.Denied = []keyring.DeniedCert{
		{SHA256: hex.EncodeToString(sum[:])},
		{IssuerSHA256: certid.IssuerDigest(set.ClientB.Cert.RawIssuer), Serial: set.ClientB.Cert.SerialNumber.String()},
	}
	nr, err := keyring.NewSnapshot(d, testSchedule())
	if err != nil {
		t.Fatal(err)
	}
	ts.rings.Store(nr)
	for name, cfg := range map[string]*tls.Config{"A (fingerprint)": cfgA, "B (issuer+serial)": cfgB} {
		if cs, err := dial(t, ts.addr, cfg); err == nil {
			t.Errorf("revoked client %s connected (resumed=%v)", name, cs.DidResume)
		}
		// Nor on a full handshake.
		cfg.ClientSessionCache = nil
		if _, err := dial(t, ts.addr, cfg); err == nil {
			t.Errorf("revoked client %s connected with a full handshake", name)
		}
	}
}

func TestNoRingMeansFullHandshakes(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		ts := newTestServer(t, set, v, nil)
		cfg := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
		for i := range 3 {
			cs, err := dial(t, ts.addr, cfg)
			if err != nil {
				t.Fatalf("%s connection %d: %v", tls.VersionName(v), i, err)
			}
			if cs.DidResume {
				t.Fatalf("%s: resumed without a ring", tls.VersionName(v))
			}
		}
	}
}

func TestRingSwapKeepsServing(t *testing.T) {
	set, _ := pki.NewSet(pki.ECDSAP256)
	r, _ := testRing(t)
	ts := newTestServer(t, set, tls.VersionTLS13, r)
	cfg := clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(8))
	if _, err := dial(t, ts.addr, cfg); err != nil {
		t.Fatal(err)
	}
	// Another fleet's ring (unknown keys): a silent full handshake.
	s := testSchedule()
	other, _ := s.Maintain(nil, t0, seqKeysFrom(500))
	or, _ := keyring.NewSnapshot(other, s)
	ts.rings.Store(or)
	cs, err := dial(t, ts.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cs.DidResume {
		t.Fatal("resumed with a ticket from an unknown key")
	}
	// ...which issued a fresh ticket that now resumes.
	cs, err = dial(t, ts.addr, cfg)
	if err != nil || !cs.DidResume {
		t.Fatalf("after a full handshake the new ticket did not resume: %v %v", cs.DidResume, err)
	}
}

// captureSessionState returns SessionState.Bytes of a real TLS 1.3 mTLS
// server session.
func captureSessionState(t testing.TB) []byte {
	t.Helper()
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := testRing(t)
	ts := newTestServer(t, set, tls.VersionTLS13, r)
	var captured atomic.Pointer[[]byte]
	wrap := ts.cfg.WrapSession
	ts.cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		b, err := ss.Bytes()
		if err == nil {
			captured.Store(&b)
		}
		return wrap(cs, ss)
	}
	if _, err := dial(t, ts.addr, clientConfig(set, set.ClientA, tls.NewLRUClientSessionCache(1))); err != nil {
		t.Fatal(err)
	}
	p := captured.Load()
	if p == nil {
		t.Fatal("no session state captured")
	}
	return *p
}
