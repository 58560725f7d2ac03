package keyring

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock that tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// testKEK is a KEK derived from seed, so that tests can make the same one
// twice or two different ones.
func testKEK(t testing.TB, seed byte) *KEK {
	t.Helper()
	m := make([]byte, KEKSize)
	for i := range m {
		m[i] = seed + byte(i)
	}
	k, err := newKEK(m)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
