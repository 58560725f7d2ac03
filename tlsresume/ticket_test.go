package tlsresume

import (
	"bytes"
	"crypto/tls"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// testRing builds a ring at t0 with key 1 sealing and key 2 staged.
func testRing(t testing.TB) (*keyring.Snapshot, *keyring.Document) {
	t.Helper()
	s := testSchedule()
	doc, err := s.Maintain(nil, t0, seqKeys())
	if err != nil {
		t.Fatal(err)
	}
	r, err := keyring.NewSnapshot(doc, s)
	if err != nil {
		t.Fatal(err)
	}
	return r, doc
}

func testBinding(realm byte, across bool) *ticketBinding {
	rl := [32]byte{realm}
	return &ticketBinding{realm: rl, realmHint: realmHintOf(rl), acrossHosts: across, lifetime: 600}
}

func TestTicketRoundTrip(t *testing.T) {
	r, _ := testRing(t)
	b := testBinding(1, false)
	state := []byte("session state bytes")
	tk, err := b.sealTicket(r.SealingKey(t0), t0, t0, "API.Example.com", state)
	if err != nil {
		t.Fatal(err)
	}
	got, why := b.openTicket(r, tk, t0.Add(time.Minute), "api.example.COM")
	if why != accepted || !bytes.Equal(got.state, state) || got.authAt != t0.Unix() {
		t.Fatalf("open = %q at %d, %s", got.state, got.authAt, why)
	}
	if bytes.Contains(tk, state) {
		t.Fatal("state visible in ticket")
	}
}

func TestTicketRejections(t *testing.T) {
	r, doc := testRing(t)
	b := testBinding(1, false)
	k1 := r.SealingKey(t0)
	good, _ := b.sealTicket(k1, t0, t0, "a.example.com", []byte("s"))
	now := t0.Add(time.Minute)

	// A ring in which key 1 has expired: key 2 active long ago, key 3 now.
	s := testSchedule()
	later, _ := s.Maintain(doc, t0.Add(time.Hour), seqKeysFrom(3))
	retiredRing, _ := keyring.NewSnapshot(later, s)

	invalidated := doc.Clone()
	invalidated.InvalidatedBefore = t0.Add(time.Second)
	invRing, _ := keyring.NewSnapshot(invalidated, s)

	otherKEKRing := func() *keyring.Snapshot {
		d, _ := s.Maintain(nil, t0, seqKeysFrom(100))
		rr, _ := keyring.NewSnapshot(d, s)
		return rr
	}()

	tampered := func(i int) []byte {
		c := bytes.Clone(good)
		c[i] ^= 0x40
		return c
	}
	for _, tc := range []struct {
		name   string
		b      *ticketBinding
		r      *keyring.Snapshot
		ticket []byte
		at     time.Time
		sni    string
		want   rejection
	}{
		{"accepted", b, r, good, now, "a.example.com", accepted},
		{"empty", b, r, nil, now, "a.example.com", rejectMalformed},
		{"short", b, r, good[:ticketMinLen-1], now, "a.example.com", rejectMalformed},
		{"bad version", b, r, append([]byte{9}, good[1:]...), now, "a.example.com", rejectMalformed},
		{"placeholder", b, r, placeholderNoRing, now, "a.example.com", rejectNoRing},
		{"no ring loaded", b, nil, good, now, "a.example.com", rejectNoRing},
		{"unknown key", b, otherKEKRing, good, now, "a.example.com", rejectUnknownKey},
		{"retired key", b, retiredRing, good, t0.Add(time.Hour + 14*time.Minute), "a.example.com", rejectRetiredKey},
		{"other realm", testBinding(2, false), r, good, now, "a.example.com", rejectWrongRealm},
		{"other host", b, r, good, now, "b.example.com", rejectWrongHost},
		{"tampered nonce", b, r, tampered(10), now, "a.example.com", rejectTampered},
		{"tampered body", b, r, tampered(ticketHeaderLen + 3), now, "a.example.com", rejectTampered},
		{"tampered tag", b, r, tampered(len(good) - 1), now, "a.example.com", rejectTampered},
		{"expired", b, r, good, t0.Add(10*time.Minute + time.Second), "a.example.com", rejectExpired},
		{"from the future", b, r, good, t0.Add(-allowedFutureSkew - time.Minute), "a.example.com", rejectNotYetValid},
		{"invalidated", b, invRing, good, now, "a.example.com", rejectInvalidated},
		// Same realm hint but another realm digest: the AEAD catches it.
		{"realm hint collision", &ticketBinding{realm: [32]byte{1, 0, 9}, realmHint: b.realmHint, lifetime: 600}, r, good, now, "a.example.com", rejectTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, why := tc.b.openTicket(tc.r, tc.ticket, tc.at, tc.sni)
			if why != tc.want {
				t.Fatalf("got %q, want %q", why, tc.want)
			}
		})
	}
}

func TestTicketAcrossHosts(t *testing.T) {
	r, _ := testRing(t)
	b := testBinding(1, true)
	tk, _ := b.sealTicket(r.SealingKey(t0), t0, t0, "a.example.com", []byte("s"))
	if _, why := b.openTicket(r, tk, t0, "b.example.com"); why != accepted {
		t.Fatalf("resume_across_hosts: %s", why)
	}
	// A host-bound binding of the same realm must not accept it either way.
	if _, why := testBinding(1, false).openTicket(r, tk, t0, "a.example.com"); why == accepted {
		t.Fatal("host-bound policy accepted a cross-host ticket")
	}
}

// Every single-bit change anywhere in a ticket is refused.
func TestTicketEveryByteAuthenticated(t *testing.T) {
	r, _ := testRing(t)
	b := testBinding(1, false)
	good, _ := b.sealTicket(r.SealingKey(t0), t0, t0, "a.example.com", []byte("some session state"))
	for i := range good {
		c := bytes.Clone(good)
		c[i] ^= 1
		if _, why := b.openTicket(r, c, t0, "a.example.com"); why == accepted {
			t.Fatalf("flipping byte %d still opened", i)
		}
	}
}

func seqKeysFrom(start uint32) keyring.KeyGenerator {
	n := start - 1
	return func() (keyring.Key, error) {
		n++
		s := make([]byte, keyring.TicketKeySize)
		s[0], s[1] = byte(n), byte(n>>8)
		return keyring.Key{ID: n, Secret: s}, nil
	}
}

// FuzzUnwrapSession feeds arbitrary identities to the UnwrapSession hook:
// it must never panic, never fail the connection, and resume only what one
// of our keys sealed.
func FuzzUnwrapSession(f *testing.F) {
	// Random keys: fuzz workers run this setup in their own processes, and
	// only a ticket sealed by this process may open here.
	sched := testSchedule()
	doc, err := sched.Maintain(nil, t0, keyring.NewRandomKey)
	if err != nil {
		f.Fatal(err)
	}
	r, err := keyring.NewSnapshot(doc, sched)
	if err != nil {
		f.Fatal(err)
	}
	holder := new(keyring.Holder)
	holder.Store(r)
	pb := &policyBinding{ticketBinding: *testBinding(1, false), rings: holder, now: func() time.Time { return t0 }}
	ss := realSessionState(f)
	good, err := pb.wrapSession(tls.ConnectionState{ServerName: "a.example.com"}, ss)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, "a.example.com")
	f.Add(good[:30], "a.example.com")
	f.Add([]byte{}, "")
	f.Add([]byte{1, 0, 0, 0, 1}, "x")
	f.Add(placeholderNoRing, "a.example.com")
	f.Fuzz(func(t *testing.T, identity []byte, sni string) {
		got, err := pb.unwrapSession(identity, tls.ConnectionState{ServerName: sni})
		if err != nil {
			t.Fatalf("UnwrapSession returned an error (would end the connection): %v", err)
		}
		if got != nil && !bytes.Equal(identity, good) {
			// Only the one ticket we sealed may open (modulo the case of
			// its SNI, which is not part of the identity).
			t.Fatalf("forged identity %x resumed a session", identity)
		}
	})
}

// realSessionState obtains a genuine server-side SessionState from a TLS 1.3
// handshake over an in-memory pipe.
func realSessionState(t testing.TB) *tls.SessionState {
	t.Helper()
	state := captureSessionState(t)
	ss, err := tls.ParseSessionState(state)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}
