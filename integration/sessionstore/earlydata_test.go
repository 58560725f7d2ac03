package sessionstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// lastTicket is a client session cache that keeps the last ticket so it
// can be copied into another client (a replay).
type lastTicket struct {
	tls.ClientSessionCache
	mu    sync.Mutex
	key   string
	state *tls.ClientSessionState
}

func (c *lastTicket) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.mu.Lock()
		c.key, c.state = key, cs
		c.mu.Unlock()
	}
	c.ClientSessionCache.Put(key, cs)
}

func (c *lastTicket) copy(t *testing.T) tls.ClientSessionCache {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		t.Fatal("no session ticket received")
	}
	cache := tls.NewLRUClientSessionCache(1)
	cache.Put(c.key, c.state)
	return cache
}

func h3Config(set *pki.Set, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		RootCAs:            set.Root.Pool(),
		ServerName:         "localhost",
		NextProtos:         []string{http3.NextProtoH3},
		ClientSessionCache: cache,
		MinVersion:         tls.VersionTLS13,
	}
}

// get0RTT resumes with cfg's ticket, sends a GET as 0-RTT and reports how
// the server took the connection.
func get0RTT(t *testing.T, ctx context.Context, addr, url string, cfg *tls.Config) (resumed, used0RTT bool) {
	t.Helper()
	conn, err := quic.DialAddrEarly(ctx, addr, cfg, &quic.Config{})
	if err != nil {
		t.Fatalf("DialAddrEarly %s: %v", addr, err)
	}
	defer conn.CloseWithError(0, "")
	cc := (&http3.Transport{}).NewClientConn(conn)
	req, _ := http.NewRequestWithContext(ctx, http3.MethodGet0RTT, url, nil)
	resp, err := cc.RoundTrip(req)
	switch {
	case errors.Is(err, quic.Err0RTTRejected):
		// The server refused the early data; the handshake goes on (a
		// real client would now resend the request).
	case err != nil:
		t.Fatalf("GET %s: %v", url, err)
	default:
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", url, resp.StatusCode)
		}
	}
	select {
	case <-conn.HandshakeComplete():
	case <-ctx.Done():
		t.Fatal("handshake did not complete")
	}
	cs := conn.ConnectionState()
	return cs.TLS.DidResume, cs.Used0RTT
}

// TestEarlyDataOnceAcrossNodes: a session ticket opens 0-RTT once across
// the fleet. The same ticket replayed 4 more times, to both nodes, still
// resumes, but its early data is refused (issue 14: at most once across
// two nodes with Redis).
func TestEarlyDataOnceAcrossNodes(t *testing.T) {
	srv := testredis.Must(t)
	set, files := harness.NewPKI(t)
	c := fleet{
		poll:    "1s",
		globals: "\tservers {\n\t\tprotocols h1 h2 h3\n\t}\n",
		store:   []string{"key_prefix ed:"},
		site: func(n harness.NodeInfo) string {
			return fmt.Sprintf("https://localhost:%d {\n\ttls %s %s\n\trespond %q\n}\n", n.Port(), files.ServerCert, files.ServerKey, n.Name)
		},
	}.start(t, srv)
	a, b := c.Node(0).Addr(), c.Node(1).Addr()
	urlA := fmt.Sprintf("https://localhost:%d/", c.Node(0).Port())
	urlB := fmt.Sprintf("https://localhost:%d/", c.Node(1).Port())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Wait until node B opens node A's sessions (both loaded the ring).
	deadline := time.Now().Add(20 * time.Second)
	for {
		prime := &lastTicket{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
		getFull(t, ctx, a, urlA, h3Config(set, prime))
		if resumed, _ := get0RTT(t, ctx, b, urlB, h3Config(set, prime.copy(t))); resumed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node B never resumed node A's HTTP/3 session")
		}
		time.Sleep(200 * time.Millisecond)
	}

	prime := &lastTicket{ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	getFull(t, ctx, a, urlA, h3Config(set, prime))

	// The ticket presented 5 times, alternating nodes (A, B, A, B, A):
	// every presentation resumes, early data is accepted exactly once
	// across the two nodes, on the first.
	early := 0
	for i := range 5 {
		addr, url, node := a, urlA, "A"
		if i%2 == 1 {
			addr, url, node = b, urlB, "B"
		}
		resumed, used := get0RTT(t, ctx, addr, url, h3Config(set, prime.copy(t)))
		if !resumed {
			t.Fatalf("presentation %d of the ticket, on node %s: no resumption", i+1, node)
		}
		if i == 0 && !used {
			t.Fatalf("first use of the ticket on node A: no early data; want 0-RTT once")
		}
		if used {
			early++
			if i > 0 {
				t.Errorf("presentation %d of the ticket (replayed to node %s) got early data", i+1, node)
			}
		}
	}
	if early != 1 {
		t.Errorf("early data accepted %d times over 5 presentations on two nodes; want exactly 1", early)
	}
}

// getFull makes a full HTTP/3 handshake and request, and waits for the
// session ticket that follows.
func getFull(t *testing.T, ctx context.Context, addr, url string, cfg *tls.Config) {
	t.Helper()
	cache := cfg.ClientSessionCache.(*lastTicket)
	conn, err := quic.DialAddr(ctx, addr, cfg, &quic.Config{})
	if err != nil {
		t.Fatalf("QUIC to %s: %v", addr, err)
	}
	defer conn.CloseWithError(0, "")
	cc := (&http3.Transport{}).NewClientConn(conn)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for range 100 {
		cache.mu.Lock()
		ok := cache.state != nil
		cache.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no session ticket after the first HTTP/3 request")
}
