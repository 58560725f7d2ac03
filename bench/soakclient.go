package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// Protocols the soak's clients speak.
const (
	protoTLS13 = iota
	protoTLS12
	protoH3
)

var protoNames = []string{"TLS 1.3", "TLS 1.2", "HTTP/3"}

// connSample is one connection a soak client made.
type connSample struct {
	At      time.Duration // start, since the run began
	Took    time.Duration // handshake
	Worker  int
	Node    int
	Proto   int
	ID      int
	Doomed  bool // its certificate is revoked at some point
	Revoked bool // it started after its revocation had propagated
	Grace   bool // it started between revocation and propagation
	First   bool // the identity's first connection (nothing to resume)
	OK      bool
	Resumed bool
	Early   bool // a request of it ran in 0-RTT (the server said so)
	Too     bool // a 0-RTT POST was answered 425 (and retried)
	// Rejected is an attempt at 0-RTT the server refused (sent again in
	// 1-RTT).
	Rejected bool
	End      time.Duration // when it ended, since the run began
	// Reload marks a failure that ended while its node was reloading
	// its config (set by the analysis).
	Reload bool
	// EarlyPost is a POST the server ran in early data: the guard failed.
	EarlyPost bool
	Err       string
}

// replaySample is one ticket replayed in 0-RTT to several nodes.
type replaySample struct {
	At       time.Duration
	Stateful bool // issued by a node with the session store
	Uses     int  // 0-RTT attempts with copies of the ticket
	Accepted int  // of which the server ran the request in early data
	Err      string
}

// soakRun collects what the clients saw.
type soakRun struct {
	e       *soakEnv
	start   time.Time
	mu      sync.Mutex
	samples []connSample
	replays []replaySample
	count   atomic.Int64
}

func (r *soakRun) add(s connSample) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
	r.count.Add(1)
}

// worker w's connections until the deadline. Client w speaks one protocol
// (w mod 8: 0–2 TLS 1.3, 3–4 TLS 1.2, 5–7 HTTP/3); the last
// o.stateless clients talk to the stateless node, the others round robin
// over the store nodes. Every fourth connection uses one of the worker's
// identities that will be revoked, if it has any.
func (r *soakRun) worker(ctx context.Context, w int, deadline time.Time) {
	o := r.e.o
	proto := protoTLS13
	switch w % 8 {
	case 3, 4:
		proto = protoTLS12
	case 5, 6, 7:
		proto = protoH3
	}
	stateless := w >= o.clients-o.stateless
	good := r.e.ids[w]
	var doomed []*identity
	for _, id := range r.e.ids[o.clients:] {
		if id.id%o.clients == w {
			doomed = append(doomed, id)
		}
	}
	rng := rand.New(rand.NewPCG(uint64(w), 18))
	for i := 0; ctx.Err() == nil && time.Now().Before(deadline); i++ {
		id := good
		if i%4 == 3 && len(doomed) > 0 {
			id = doomed[(i/4)%len(doomed)]
		}
		node := 3
		if !stateless {
			node = (w + i) % 3
		}
		s := r.connect(ctx, w, node, proto, id, i)
		r.add(s)
		if o.think > 0 {
			d := o.think/2 + time.Duration(rng.Int64N(int64(o.think)))
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
	}
}

// connect makes one connection of identity id to node with proto.
func (r *soakRun) connect(ctx context.Context, w, node, proto int, id *identity, i int) connSample {
	n := r.e.nodes[node]
	start := time.Now()
	s := connSample{At: start.Sub(r.start), Worker: w, Node: node, Proto: proto, ID: id.id, Doomed: id.doomed}
	if at := id.revokedAt(); !at.IsZero() {
		// A node applies the revocation at its next poll: up to
		// poll_interval plus 10% jitter after its previous poll ended,
		// plus that poll's own work (docs/admin.md).
		if start.After(at.Add(propagationBound(r.e.o.poll))) {
			s.Revoked = true
		} else {
			s.Grace = true
		}
	}
	id.mu.Lock()
	s.First = id.first
	id.mu.Unlock()
	var err error
	switch proto {
	case protoTLS13, protoTLS12:
		v := uint16(tls.VersionTLS13)
		if proto == protoTLS12 {
			v = tls.VersionTLS12
		}
		var c connection
		c, err = connectOnce(ctx, n.addr, r.e.clientConfig(id, v))
		s.Took, s.Resumed = c.handshake, c.resumed
	case protoH3:
		method := http3.MethodGet0RTT
		if i%3 == 1 {
			method = http.MethodPost
		}
		var h h3Result
		h, err = h3Once(ctx, n.addr, n.port, r.e.clientConfig(id, tls.VersionTLS13), method)
		s.Took, s.Resumed, s.Early, s.Too, s.EarlyPost, s.Rejected = h.handshake, h.resumed, h.early, h.tooEarly, h.earlyPost, h.rejected
	}
	s.End = time.Since(r.start)
	if err != nil {
		s.Err = err.Error()
	} else {
		s.OK = true
		id.mu.Lock()
		id.first = false
		id.mu.Unlock()
	}
	return s
}

// h3Result is what one HTTP/3 connection saw.
type h3Result struct {
	handshake time.Duration
	resumed   bool
	used0RTT  bool
	early     bool // the server ran a request in early data
	tooEarly  bool // a POST in 0-RTT got 425
	rejected  bool // the server rejected the 0-RTT data
	earlyPost bool // a POST ran in early data (must never happen)
}

// h3Once opens a QUIC connection (0-RTT when the session allows it) and
// sends one request: a GET as GET_0RTT, or a POST written before the
// handshake completes (http3.ClientConn.OpenRequestStream does not wait).
// A POST answered 425 Too Early is sent again on the same connection after
// the handshake, as RFC 8470 clients do. When the server rejects the 0-RTT
// data the request is sent again on a new 1-RTT connection (quic-go hands
// the same connection back with its streams reset, which its http3 client
// connection does not survive).
func h3Once(ctx context.Context, addr string, port int, cfg *tls.Config, method string) (h3Result, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cfg.NextProtos = []string{http3.NextProtoH3}
	res, err := h3Attempt(ctx, addr, port, cfg, method, true)
	if errors.Is(err, quic.Err0RTTRejected) {
		res, err = h3Attempt(ctx, addr, port, cfg, method, false)
		res.rejected = true
	}
	return res, err
}

func h3Attempt(ctx context.Context, addr string, port int, cfg *tls.Config, method string, early bool) (h3Result, error) {
	var res h3Result
	start := time.Now()
	var conn *quic.Conn
	var err error
	if early {
		conn, err = quic.DialAddrEarly(ctx, addr, cfg, &quic.Config{})
	} else {
		conn, err = quic.DialAddr(ctx, addr, cfg, &quic.Config{})
	}
	if err != nil {
		return res, fmt.Errorf("QUIC: %w", err)
	}
	defer conn.CloseWithError(0, "")
	hsDone := make(chan time.Duration, 1)
	go func() {
		select {
		case <-conn.HandshakeComplete():
			hsDone <- time.Since(start)
		case <-ctx.Done():
			hsDone <- -1
		}
	}()
	url := fmt.Sprintf("https://localhost:%d/", port)
	cc := (&http3.Transport{}).NewClientConn(conn)
	var status int
	var body string
	switch {
	case method == http.MethodPost && early:
		status, body, err = h3EarlyPost(ctx, cc, url)
	case method == http.MethodPost:
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("x=1"))
		status, body, err = h3RoundTrip(cc, req)
	default:
		m := http3.MethodGet0RTT
		if !early || method == http.MethodGet {
			m = http.MethodGet
		}
		req, _ := http.NewRequestWithContext(ctx, m, url, nil)
		status, body, err = h3RoundTrip(cc, req)
	}
	if err == nil && status == http.StatusTooEarly {
		res.tooEarly = true
		select {
		case <-conn.HandshakeComplete():
		case <-ctx.Done():
			return res, fmt.Errorf("handshake: %w", ctx.Err())
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("x=1"))
		status, body, err = h3RoundTrip(cc, req)
	}
	if err != nil {
		return res, err
	}
	res.handshake = <-hsDone
	if res.handshake < 0 {
		return res, errors.New("handshake did not complete")
	}
	cs := conn.ConnectionState()
	res.resumed, res.used0RTT = cs.TLS.DidResume, cs.Used0RTT
	if status != http.StatusOK {
		return res, fmt.Errorf("status %d: %s", status, body)
	}
	inEarly := strings.Contains(body, "early=true")
	res.early = inEarly
	if inEarly && strings.HasPrefix(body, "POST") {
		res.earlyPost = true
	}
	return res, nil
}

func h3RoundTrip(cc *http3.ClientConn, req *http.Request) (int, string, error) {
	resp, err := cc.RoundTrip(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), err
}

// h3EarlyPost writes a POST on a new stream without waiting for the
// handshake, so it goes in 0-RTT when the session allows it.
func h3EarlyPost(ctx context.Context, cc *http3.ClientConn, url string) (int, string, error) {
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		return 0, "", err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	const body = "x=1"
	req.Body = http.NoBody
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := str.SendRequestHeader(req); err != nil {
		return 0, "", err
	}
	if _, err := io.WriteString(str, body); err != nil {
		return 0, "", err
	}
	// As http3's RoundTrip: Close fails when the server has answered and
	// stopped reading already (STOP_SENDING); the response decides.
	_ = str.Close()
	resp, err := str.ReadResponse()
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(b), err
}

// keepLast is a client session cache that remembers the last ticket so it
// can be handed to other clients (a replay).
type keepLast struct {
	tls.ClientSessionCache
	mu    sync.Mutex
	key   string
	state *tls.ClientSessionState
}

func (c *keepLast) Put(key string, cs *tls.ClientSessionState) {
	if cs != nil {
		c.mu.Lock()
		c.key, c.state = key, cs
		c.mu.Unlock()
	}
	c.ClientSessionCache.Put(key, cs)
}

func (c *keepLast) copyCache() tls.ClientSessionCache {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		return nil
	}
	cache := tls.NewLRUClientSessionCache(1)
	cache.Put(c.key, c.state)
	return cache
}

// replayer, every couple of seconds, gets a fresh HTTP/3 ticket from one
// node and sends a 0-RTT GET with a copy of it to every node of its kind
// (the three store nodes, or the stateless node twice): how many times
// one ticket's early data is accepted.
func (r *soakRun) replayer(ctx context.Context, deadline time.Time) {
	id := r.e.ids[0] // never revoked
	for i := 0; ctx.Err() == nil && time.Now().Before(deadline); i++ {
		stateful := i%4 != 3
		issuer := r.e.nodes[3]
		targets := []*soakNode{issuer, issuer}
		if stateful {
			issuer = r.e.nodes[i%3]
			targets = r.e.nodes[:3]
		}
		s := replaySample{At: time.Since(r.start), Stateful: stateful}
		cache := &keepLast{ClientSessionCache: tls.NewLRUClientSessionCache(1)}
		cfg := r.e.clientConfig(id, tls.VersionTLS13)
		cfg.ClientSessionCache = cache
		_, err := h3Once(ctx, issuer.addr, issuer.port, cfg, http.MethodGet)
		for wait := 0; err == nil && cache.copyCache() == nil && wait < 50; wait++ {
			time.Sleep(20 * time.Millisecond)
		}
		if err == nil && cache.copyCache() == nil {
			err = errors.New("no ticket")
		}
		if err != nil {
			s.Err = "priming: " + err.Error()
		} else {
			for _, t := range targets {
				cfg := r.e.clientConfig(id, tls.VersionTLS13)
				cfg.ClientSessionCache = cache.copyCache()
				h, err := h3Once(ctx, t.addr, t.port, cfg, http3.MethodGet0RTT)
				s.Uses++
				if err != nil {
					s.Err = err.Error()
					continue
				}
				if h.early && h.used0RTT {
					s.Accepted++
				}
			}
		}
		r.mu.Lock()
		r.replays = append(r.replays, s)
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// propagationBound is how long after a ring change every node may still
// serve without it: a poll interval with its 10% jitter, and a second for
// the poll itself (storage read, decryption, install) on a loaded machine.
func propagationBound(poll time.Duration) time.Duration {
	return poll + poll/10 + time.Second
}
