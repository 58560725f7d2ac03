package hardening

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

func newKEK(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// sessionCache is a client session cache that counts the tickets the
// server hands the client (non-nil Puts) and keeps the last one, so that
// it can be copied into fresh clients. With fixed set, Get offers that
// session for every server name (a client carrying a ticket to another
// host, or offering an old ticket again).
type sessionCache struct {
	inner tls.ClientSessionCache

	mu    sync.Mutex
	puts  int
	key   string
	state *tls.ClientSessionState
	fixed *tls.ClientSessionState
}

func newSessionCache() *sessionCache {
	return &sessionCache{inner: tls.NewLRUClientSessionCache(8)}
}

func (c *sessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	fixed := c.fixed
	c.mu.Unlock()
	if fixed != nil {
		return fixed, true
	}
	return c.inner.Get(key)
}

func (c *sessionCache) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.mu.Lock()
		c.puts++
		c.key, c.state = key, cs
		c.mu.Unlock()
	}
	c.inner.Put(key, cs)
}

// Puts counts the tickets received so far.
func (c *sessionCache) Puts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.puts
}

// last returns the last ticket received.
func (c *sessionCache) last(t testing.TB) *tls.ClientSessionState {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		t.Fatal("the client never received a session ticket")
	}
	return c.state
}

// offering returns a fresh cache that offers st for every server name.
func offering(st *tls.ClientSessionState) *sessionCache {
	c := newSessionCache()
	c.fixed = st
	return c
}

// waitPuts waits until the cache holds at least n tickets.
func (c *sessionCache) waitPuts(t testing.TB, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for c.Puts() < n {
		if time.Now().After(deadline) {
			t.Fatalf("no session ticket within %v (%d received, want %d)", within, c.Puts(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// h3TLS is an HTTP/3 client config presenting client (none when nil).
func h3TLS(set *pki.Set, client *pki.Leaf, serverName string, cache tls.ClientSessionCache) *tls.Config {
	cfg := &tls.Config{
		RootCAs:            set.Root.Pool(),
		ServerName:         serverName,
		NextProtos:         []string{http3.NextProtoH3},
		ClientSessionCache: cache,
		MinVersion:         tls.VersionTLS13,
	}
	if client != nil {
		cfg.Certificates = []tls.Certificate{client.TLSCertificate()}
	}
	return cfg
}

// h3Full makes a full HTTP/3 handshake, GETs url and waits for the session
// ticket that follows.
func h3Full(t *testing.T, ctx context.Context, addr, url string, cfg *tls.Config) {
	t.Helper()
	cache := cfg.ClientSessionCache.(*sessionCache)
	before := cache.Puts()
	conn, err := quic.DialAddr(ctx, addr, cfg, &quic.Config{})
	if err != nil {
		t.Fatalf("QUIC to %s: %v", addr, err)
	}
	defer conn.CloseWithError(0, "")
	if conn.ConnectionState().TLS.DidResume {
		t.Fatalf("first HTTP/3 connection to %s resumed", addr)
	}
	cc := (&http3.Transport{}).NewClientConn(conn)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s after a full handshake: status %d", url, resp.StatusCode)
	}
	cache.waitPuts(t, before+1, 5*time.Second)
}

// earlyResult is what happened to a request sent in 0-RTT.
type earlyResult struct {
	// Status is the response status (0 when there was no response) and
	// Err why there was none.
	Status int
	Body   string
	Err    error
	// Resumed and Used0RTT are the connection's state once its handshake
	// completed (false when it never did).
	Resumed, Used0RTT bool
	// Closed reports that the server ended the connection.
	Closed error
}

func (r earlyResult) String() string {
	return fmt.Sprintf("status=%d body=%q err=%v resumed=%v 0-RTT=%v closed=%v", r.Status, r.Body, r.Err, r.Resumed, r.Used0RTT, r.Closed)
}

// h3Early resumes cfg's session and sends method url (with body) at once,
// as 0-RTT data, without waiting for the handshake. It then waits (bounded)
// for the response and the handshake, and, when the connection succeeded,
// for the ticket that follows (wantTicket), before closing.
func h3Early(t *testing.T, ctx context.Context, addr string, cfg *tls.Config, method, url, body string, wantTicket bool) earlyResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var res earlyResult
	cache := cfg.ClientSessionCache.(*sessionCache)
	before := cache.Puts()
	conn, err := quic.DialAddrEarly(ctx, addr, cfg, &quic.Config{})
	if err != nil {
		// The server refused the handshake before the client could send
		// anything.
		res.Err = err
		return res
	}
	defer conn.CloseWithError(0, "")
	cc := (&http3.Transport{}).NewClientConn(conn)
	// Whatever happens to the request (a rejected 0-RTT may already be
	// known when the stream opens), the handshake's outcome is read below.
	res.Status, res.Body, res.Err = h3Send(ctx, cc, method, url, body)
	select {
	case <-conn.HandshakeComplete():
		cs := conn.ConnectionState()
		res.Resumed, res.Used0RTT = cs.TLS.DidResume, cs.Used0RTT
	case <-conn.Context().Done():
	case <-ctx.Done():
	}
	if wantTicket && res.Err == nil {
		deadline := time.Now().Add(5 * time.Second)
		for cache.Puts() == before && time.Now().Before(deadline) && conn.Context().Err() == nil {
			time.Sleep(20 * time.Millisecond)
		}
	} else {
		// Give a server that would (wrongly) go on with the connection
		// the time to send its ticket, or to close it.
		select {
		case <-conn.Context().Done():
		case <-time.After(time.Second):
		}
	}
	if conn.Context().Err() != nil {
		res.Closed = context.Cause(conn.Context())
		if res.Closed == nil {
			res.Closed = conn.Context().Err()
		}
	}
	return res
}

// h3Send sends method url (with body) on a new request stream of cc and
// reads the answer.
func h3Send(ctx context.Context, cc *http3.ClientConn, method, url, body string) (int, string, error) {
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("opening stream: %w", err)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, nil)
	if body != "" {
		req.Body = http.NoBody
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if err := str.SendRequestHeader(req); err != nil {
		return 0, "", fmt.Errorf("sending header: %w", err)
	}
	if body != "" {
		if _, err := io.WriteString(str, body); err != nil {
			return 0, "", fmt.Errorf("sending body: %w", err)
		}
	}
	_ = str.Close()
	resp, err := str.ReadResponse()
	if err != nil {
		return 0, "", err
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// accessLog counts the requests an access log (format json) recorded with
// the given URI: the handler invocations.
func accessLogCount(t testing.TB, file, uri string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Request struct {
				URI string `json:"uri"`
			} `json:"request"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Request.URI == uri {
			n++
		}
	}
	return n
}

// waitLogged waits until file has recorded uri at least n times.
func waitLogged(t testing.TB, file, uri string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for accessLogCount(t, file, uri) < n {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(file)
			t.Fatalf("access log %s: %s not recorded %d times within %v:\n%s", file, uri, n, within, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fingerprint is the hex SHA-256 of a leaf, as /tls_resume/revoke takes it.
func fingerprint(l *pki.Leaf) string {
	sum := sha256.Sum256(l.Cert.Raw)
	return hex.EncodeToString(sum[:])
}

// revoke puts leaf on the deny list through the admin API at adminURL
// (".../tls_resume/revoke").
func revoke(t testing.TB, adminURL string, leaf *pki.Leaf) {
	t.Helper()
	body := fmt.Sprintf(`{"sha256": %q, "reason": "test"}`, fingerprint(leaf))
	client := &http.Client{Timeout: 15 * time.Second}
	resp, err := client.Post(adminURL, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %s: %s", resp.Status, b)
	}
}

// status is the part of GET /tls_resume/status these tests read.
type status struct {
	Version            uint64 `json:"version"`
	SealingKeyID       string `json:"sealing_key_id"`
	DeniedCertificates int    `json:"denied_certificates"`
	Store              struct {
		LastError string `json:"last_error"`
		Failures  int    `json:"failures"`
	} `json:"store"`
	// raw is the whole document, for failure messages and fields this
	// struct does not name.
	raw map[string]any
}

func getStatus(t testing.TB, url string) status {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	var st status
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("status: %v\n%s", err, b)
	}
	_ = json.Unmarshal(b, &st.raw)
	return st
}

func (s status) String() string {
	b, _ := json.Marshal(s.raw)
	return string(b)
}
