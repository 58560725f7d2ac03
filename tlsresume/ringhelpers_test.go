package tlsresume

import (
	"encoding/base64"
	"sync"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

// Ring fixtures of the handshake tests; keyring's own tests have theirs.

var t0 = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

func testSchedule() keyring.Schedule {
	return keyring.Schedule{Interval: time.Hour, Lifetime: 10 * time.Minute, Lead: 3 * time.Minute}
}

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// testKEK is a KEK derived from seed, so that tests can make the same one
// twice or two different ones.
func testKEK(t testing.TB, seed byte) *keyring.KEK {
	t.Helper()
	m := make([]byte, keyring.KEKSize)
	for i := range m {
		m[i] = seed + byte(i)
	}
	k, err := keyring.DecodeKEK(base64.StdEncoding.EncodeToString(m))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// seqKeys generates keys with IDs 1, 2, 3... so tests can name them.
func seqKeys() keyring.KeyGenerator {
	var n uint32
	return func() (keyring.Key, error) {
		n++
		s := make([]byte, keyring.TicketKeySize)
		s[0] = byte(n)
		return keyring.Key{ID: n, Secret: s}, nil
	}
}
