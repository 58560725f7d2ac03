package tlsresume

import (
	"crypto/tls"
	"testing"
	"time"
)

func TestAuthCarry(t *testing.T) {
	c := authCarry{ttl: authCarryTTL}
	now := t0
	c.put(0x1000, 42, now, nil) // a record
	c.put(0, 7, now, nil)       // no key: ignored
	if at, ok := c.take(0x1000, now.Add(time.Second)); !ok || at != 42 {
		t.Fatalf("take = %d, %v", at, ok)
	}
	if _, ok := c.take(0x1000, now); ok {
		t.Fatal("taken twice")
	}
	// An abandoned record expires.
	c.put(0x2000, 1, now, nil)
	if _, ok := c.take(0x2000, now.Add(authCarryTTL+time.Second)); ok {
		t.Fatal("expired record returned")
	}
	// An address reused by a new session overwrites a dead one.
	c.put(0x3000, 1, now, nil)
	c.put(0x3000, 99, now.Add(time.Second), nil)
	if at, _ := c.take(0x3000, now.Add(time.Second)); at != 99 {
		t.Fatalf("reused address gave %d", at)
	}
	// A flood is bounded, and swept once records expire.
	for i := range connTableShards * connTableShardCap * 2 {
		c.put(uintptr(0x10000+8*i), 1, now, nil)
	}
	if n := c.len(); n > connTableShards*connTableShardCap {
		t.Fatalf("%d records kept", n)
	}
	for i := range connTableShards {
		c.put(uintptr(8*(i+1)), 1, now.Add(authCarryTTL+time.Second), nil)
	}
	if n := c.len(); n > connTableShards {
		t.Fatalf("%d records after the flood expired", n)
	}
}

// The field authage.go relies on exists in this Go release: without it,
// resumed TLS 1.3 mTLS connections would get tickets that never open.
func TestPeerCertsFieldFound(t *testing.T) {
	if !peerCertsFieldOK {
		t.Fatal("tls.SessionState has no peerCertificates []*x509.Certificate field any more: update authage.go")
	}
	state := captureSessionState(t)
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		t.Fatal(err)
	}
	if sessionPeersKey(ss) == 0 {
		t.Fatal("no peer array address for an mTLS session")
	}
	ss2, _ := tls.ParseSessionState(state)
	if sessionPeersKey(ss2) == sessionPeersKey(ss) {
		t.Fatal("two parses share an address: the key would not tell connections apart")
	}
}

func TestSessionPeers(t *testing.T) {
	state := captureSessionState(t)
	peers, chains, ok := sessionPeers(state, new(certCache))
	if !ok || len(peers) != 2 || len(chains) != 1 || len(chains[0]) != 3 {
		t.Fatalf("ok=%v peers=%d chains=%d", ok, len(peers), len(chains))
	}
	if chains[0][0] != peers[0] {
		t.Error("chain does not start with the leaf")
	}
	// Every truncation is refused, never a panic.
	for i := range len(state) - 1 {
		if _, _, ok := sessionPeers(state[:i], new(certCache)); ok && i < 20 {
			t.Fatalf("truncated state (%d bytes) parsed", i)
		}
	}
}

func FuzzSessionPeers(f *testing.F) {
	f.Add(captureSessionState(f))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, state []byte) {
		peers, chains, ok := sessionPeers(state, new(certCache))
		if !ok {
			return
		}
		for _, c := range chains {
			if len(c) == 0 || c[0] != peers[0] {
				t.Fatal("chain without the leaf")
			}
		}
	})
}

// authCarryTTL is how long a record of authCarry lives.
const authCarryTTL = defaultConnTTL
