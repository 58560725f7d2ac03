// Package earlydata tests the early_data_guard end to end: a real Caddy (in
// process, through the harness) serving HTTP/3 with 0-RTT on, quic-go as the
// client sending requests in real TLS 1.3 early data, and a Caddy → Caddy
// reverse-proxy chain carrying RFC 8470's Early-Data header.
package earlydata

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/metrics"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"

	// the plugin's modules and Caddyfile directives in the in-process Caddy
	_ "github.com/tlsresume/caddy-tlsresume"
)

// serverDelay is the one-way delay the relay adds from Caddy to the client.
// Requests the client sends within it are early data, and Caddy handles them
// while its handshake with the client is still incomplete.
const serverDelay = 250 * time.Millisecond

// The config: one HTTPS site (HTTP/1.1, HTTP/2 and HTTP/3, 0-RTT on by
// default) with the guard on everything but /proxy/*, which it forwards to
// a plain-HTTP back end, itself guarded. The front dials the back from
// 127.0.0.2, the only address the back trusts as a proxy; test clients come
// from 127.0.0.1 and are not trusted, unless a test binds 127.0.0.2 too.
//
// No `order` or `route` anywhere: the directive order places the guard.
const caddyfileTemplate = `{
	servers :{{FRONT}} {
		protocols h1 h2 h3
	}
	servers :{{BACK}} {
		trusted_proxies static 127.0.0.2/32
	}
}

https://localhost:{{FRONT}} {
	tls {{CERT}} {{KEY}}
	log {
		output file {{LOG}}
		format json
	}
	log_append early_data {http.vars.early_data}

	@guarded not path /proxy/*
	early_data_guard @guarded {
		refuse /logout
	}

	handle_path /proxy/* {
		reverse_proxy 127.0.0.1:{{BACK}} {
			transport http {
				local_address 127.0.0.2
			}
		}
	}
	handle {
		respond "front method={method} early={http.vars.early_data} body={http.request.body}"
	}
}

http://:{{BACK}} {
	header X-Served-By back
	early_data_guard
	respond "back method={method} early={http.vars.early_data} header={header.Early-Data} body={http.request.body}"
}
`

type env struct {
	set         *pki.Set
	front, back int
	logFile     string
}

func (e *env) frontURL(path string) string {
	return "https://localhost:" + strconv.Itoa(e.front) + path
}

func startCaddy(t *testing.T) *env {
	t.Helper()
	set, files := harness.NewPKI(t)
	ports := harness.FreePorts(t, 2)
	e := &env{set: set, front: ports[0], back: ports[1], logFile: filepath.Join(t.TempDir(), "access.log")}
	cfg := strings.NewReplacer(
		"{{FRONT}}", strconv.Itoa(e.front),
		"{{BACK}}", strconv.Itoa(e.back),
		"{{CERT}}", files.ServerCert,
		"{{KEY}}", files.ServerKey,
		"{{LOG}}", e.logFile,
	).Replace(caddyfileTemplate)
	harness.NewTester(t).InitServer(cfg, "caddyfile")
	return e
}

// ticketCache is the client's TLS session cache; it reports every ticket
// stored, so the test knows when the server's NewSessionTicket has arrived.
type ticketCache struct {
	tls.ClientSessionCache
	stored chan struct{}
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case c.stored <- struct{}{}:
		default:
		}
	}
}

// h3Client is a quic-go HTTP/3 client that keeps session tickets.
type h3Client struct {
	tlsConf *tls.Config
	cache   *ticketCache
}

func newH3Client(set *pki.Set) *h3Client {
	cache := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(8), stored: make(chan struct{}, 1)}
	return &h3Client{
		cache: cache,
		tlsConf: &tls.Config{
			RootCAs:            set.Root.Pool(),
			ServerName:         "localhost",
			NextProtos:         []string{http3.NextProtoH3},
			ClientSessionCache: cache,
			MinVersion:         tls.VersionTLS13,
		},
	}
}

// primeTicket makes a full handshake and a request straight to Caddy, and
// waits until the session ticket (which allows 0-RTT) has arrived.
func (c *h3Client) primeTicket(t *testing.T, ctx context.Context, addr, url string) {
	t.Helper()
	conn, err := quic.DialAddr(ctx, addr, c.tlsConf, &quic.Config{})
	if err != nil {
		t.Fatalf("first QUIC connection: %v", err)
	}
	defer conn.CloseWithError(0, "")
	if conn.ConnectionState().TLS.DidResume {
		t.Fatal("first connection resumed a session that should not exist")
	}
	cc := (&http3.Transport{}).NewClientConn(conn)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		t.Fatalf("GET over the first connection: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "front method=GET early= body=" {
		t.Fatalf("GET after a full handshake: %d %q", resp.StatusCode, body)
	}
	select {
	case <-c.cache.stored:
	case <-ctx.Done():
		t.Fatal("no session ticket from Caddy")
	}
}

// dialEarly opens a connection that resumes the cached session and can send
// 0-RTT data at once.
func (c *h3Client) dialEarly(t *testing.T, ctx context.Context, addr string) (*quic.Conn, *http3.ClientConn) {
	t.Helper()
	conn, err := quic.DialAddrEarly(ctx, addr, c.tlsConf, &quic.Config{})
	if err != nil {
		t.Fatalf("DialAddrEarly: %v", err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	return conn, (&http3.Transport{}).NewClientConn(conn)
}

// send writes a request on a new stream without waiting for the handshake
// (http3.ClientConn.RoundTrip would wait for it for anything but GET_0RTT
// and HEAD_0RTT).
func send(t *testing.T, ctx context.Context, cc *http3.ClientConn, method, url, body string) *http3.RequestStream {
	t.Helper()
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		t.Fatalf("%s %s: opening stream: %v", method, url, err)
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, nil)
	if body != "" {
		// SendRequestHeader takes requests without a body reader;
		// http.NoBody with ContentLength set makes it announce the length,
		// and the body follows on the stream.
		req.Body = http.NoBody
		req.ContentLength = int64(len(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if err := str.SendRequestHeader(req); err != nil {
		t.Fatalf("%s %s: sending header: %v", method, url, err)
	}
	if body != "" {
		if _, err := io.WriteString(str, body); err != nil {
			t.Fatalf("%s %s: sending body: %v", method, url, err)
		}
	}
	// As http3's RoundTrip: Close fails when the server has answered and
	// stopped reading already (STOP_SENDING); the response decides.
	_ = str.Close()
	return str
}

type response struct {
	status int
	header http.Header
	body   string
}

func read(t *testing.T, str *http3.RequestStream) response {
	t.Helper()
	resp, err := str.ReadResponse()
	if err != nil {
		t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// requireStillEarly fails the test if the client's handshake completed
// before the requests just sent, which would mean they were not early data.
func requireStillEarly(t *testing.T, conn *quic.Conn) {
	t.Helper()
	select {
	case <-conn.HandshakeComplete():
		t.Fatal("the handshake completed before the requests were sent; they were not sent as 0-RTT")
	default:
	}
}

func requireUsed0RTT(t *testing.T, ctx context.Context, conn *quic.Conn) {
	t.Helper()
	select {
	case <-conn.HandshakeComplete():
	case <-ctx.Done():
		t.Fatal("handshake did not complete")
	}
	cs := conn.ConnectionState()
	if !cs.TLS.DidResume || !cs.Used0RTT {
		t.Fatalf("connection DidResume=%v Used0RTT=%v; Caddy did not accept the early data", cs.TLS.DidResume, cs.Used0RTT)
	}
}

func earlyCounts() (allowed, rejected float64) {
	return testutil.ToFloat64(metrics.EarlyDataRequests.WithLabelValues("allowed")),
		testutil.ToFloat64(metrics.EarlyDataRequests.WithLabelValues("rejected"))
}

func TestEarlyDataGuard(t *testing.T) {
	e := startCaddy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	frontAddr := harness.Addr(e.front)
	relay := newLatencyRelay(t, frontAddr, serverDelay)
	client := newH3Client(e.set)
	client.primeTicket(t, ctx, frontAddr, e.frontURL("/hello"))
	allowed0, rejected0 := earlyCounts()

	t.Run("0-RTT at the front", func(t *testing.T) {
		conn, cc := client.dialEarly(t, ctx, relay.Addr())
		get := send(t, ctx, cc, http.MethodGet, e.frontURL("/hello"), "")
		post := send(t, ctx, cc, http.MethodPost, e.frontURL("/submit"), "order=42")
		logout := send(t, ctx, cc, http.MethodGet, e.frontURL("/logout"), "")
		requireStillEarly(t, conn)

		// A safe method is served from early data, and the handler saw
		// that the request was early.
		if r := read(t, get); r.status != 200 || r.body != "front method=GET early=true body=" {
			t.Errorf("GET in 0-RTT: %d %q; want 200 and early=true", r.status, r.body)
		}
		// POST in early data: 425, and no handler ran.
		if r := read(t, post); r.status != http.StatusTooEarly || !strings.HasPrefix(r.body, "425 Too Early") {
			t.Errorf("POST in 0-RTT: %d %q; want 425 Too Early", r.status, r.body)
		}
		// A refused safe route.
		if r := read(t, logout); r.status != http.StatusTooEarly {
			t.Errorf("GET /logout in 0-RTT: %d %q; want 425 (refuse /logout)", r.status, r.body)
		}
		requireUsed0RTT(t, ctx, conn)

		// The client retries the POST after the handshake, on the same
		// connection: now it is served, body and all.
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.frontURL("/submit"), strings.NewReader("order=42"))
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST retry: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "front method=POST early= body=order=42" {
			t.Errorf("POST retried after the handshake: %d %q; want 200 with the body echoed", resp.StatusCode, body)
		}
	})

	t.Run("0-RTT through Caddy to Caddy", func(t *testing.T) {
		conn, cc := client.dialEarly(t, ctx, relay.Addr())
		get := send(t, ctx, cc, http.MethodGet, e.frontURL("/proxy/item"), "")
		post := send(t, ctx, cc, http.MethodPost, e.frontURL("/proxy/item"), "qty=1")
		requireStillEarly(t, conn)

		// The front forwards the early GET with Early-Data: 1; the back
		// trusts the front, so it sees an early request and serves it.
		if r := read(t, get); r.status != 200 || r.body != "back method=GET early=true header=1 body=" {
			t.Errorf("GET via proxy in 0-RTT: %d %q; want the back to see early=true header=1", r.status, r.body)
		}
		// The back refuses the early POST; the 425 reaches the client.
		r := read(t, post)
		if r.status != http.StatusTooEarly || r.header.Get("X-Served-By") != "back" || !strings.HasPrefix(r.body, "425 Too Early") {
			t.Errorf("POST via proxy in 0-RTT: %d %v %q; want the back's 425", r.status, r.header, r.body)
		}
		requireUsed0RTT(t, ctx, conn)

		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.frontURL("/proxy/item"), strings.NewReader("qty=1"))
		resp, err := cc.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST retry via proxy: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "back method=POST early= header= body=qty=1" {
			t.Errorf("POST via proxy after the handshake: %d %q", resp.StatusCode, body)
		}
	})

	t.Run("Early-Data header straight to the back", func(t *testing.T) {
		backURL := "http://127.0.0.1:" + strconv.Itoa(e.back) + "/direct"
		do := func(local net.IP, method string) (int, string) {
			t.Helper()
			tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}).DialContext}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequestWithContext(ctx, method, backURL, strings.NewReader("x=1"))
			req.Header.Set("Early-Data", "1")
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatalf("%s from %s: %v", method, local, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(body)
		}
		// From 127.0.0.1, not a trusted proxy: the header is ignored and
		// removed before the handler.
		if status, body := do(net.IPv4(127, 0, 0, 1), http.MethodPost); status != 200 || body != "back method=POST early= header= body=x=1" {
			t.Errorf("POST with Early-Data from an untrusted client: %d %q; want it served with the header stripped", status, body)
		}
		// From 127.0.0.2, the trusted proxy address: the header counts.
		if status, body := do(net.IPv4(127, 0, 0, 2), http.MethodPost); status != http.StatusTooEarly {
			t.Errorf("POST with Early-Data from the trusted proxy: %d %q; want 425", status, body)
		}
		if status, body := do(net.IPv4(127, 0, 0, 2), http.MethodGet); status != 200 || body != "back method=GET early=true header=1 body=x=1" {
			t.Errorf("GET with Early-Data from the trusted proxy: %d %q", status, body)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		allowed, rejected := earlyCounts()
		// allowed: front GET /hello, back GET via proxy, back GET from 127.0.0.2
		// rejected: front POST /submit and GET /logout, back POST via
		// proxy, back POST from 127.0.0.2
		if d := allowed - allowed0; d != 3 {
			t.Errorf("early_data_requests_total{outcome=allowed} grew by %v, want 3", d)
		}
		if d := rejected - rejected0; d != 4 {
			t.Errorf("early_data_requests_total{outcome=rejected} grew by %v, want 4", d)
		}
	})

	t.Run("access log", func(t *testing.T) {
		// log_append runs outside the guard, so it records the variable
		// for refused requests as well as served ones.
		want := map[string]struct {
			status int
			early  any
		}{
			"GET /hello 200":   {200, true},
			"POST /submit 425": {425, true},
			"GET /logout 425":  {425, true},
			"POST /submit 200": {200, nil},
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			entries := accessLog(t, e.logFile)
			missing := []string{}
			for key, w := range want {
				found := false
				for _, en := range entries {
					if en.key() != key {
						continue
					}
					if v, ok := en.fields["early_data"]; !ok || v != w.early {
						continue
					}
					found = true
				}
				if !found {
					missing = append(missing, fmt.Sprintf("%s early_data=%v", key, w.early))
				}
			}
			if len(missing) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("access log lacks entries %v; has %d entries:\n%s", missing, len(entries), dump(entries))
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

type logEntry struct {
	fields map[string]any
}

func (e logEntry) key() string {
	req, _ := e.fields["request"].(map[string]any)
	status, _ := e.fields["status"].(float64)
	return fmt.Sprintf("%v %v %d", req["method"], req["uri"], int(status))
}

func accessLog(t *testing.T, path string) []logEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var out []logEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, logEntry{fields: m})
		}
	}
	return out
}

func dump(entries []logEntry) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "  %s early_data=%v\n", e.key(), e.fields["early_data"])
	}
	return b.String()
}
