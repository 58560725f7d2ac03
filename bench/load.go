package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/tlsdial"
)

// A load run opens connections from concurrent workers. Each connection is
// what an mTLS client of an edge does at its cheapest: TCP connect, TLS
// handshake (timed), one small HTTP/1.1 request with "Connection: close",
// read the response to the end, close. Reading the response makes the
// server finish the handshake (a TLS 1.3 server checks the client's
// certificate only after the client's last flight) and delivers TLS 1.3
// session tickets to the client.

// loadSpec says what one run does.
type loadSpec struct {
	addr        string
	chain       *chain
	version     uint16
	resumed     bool // workers resume their sessions (else every handshake is full)
	defaultKX   bool // the client offers Go's default groups (else X25519, P-256)
	concurrency int
	duration    time.Duration
	// count, when set, receives each completed connection (the progress
	// display reads it).
	count *atomic.Int64
	// started, when set, is called once every worker has its first
	// connection behind it, just before the measured run begins.
	started func() error
}

// loadResult is what one run measured.
type loadResult struct {
	elapsed    time.Duration
	handshakes int // completed connections
	resumed    int // of which resumed a session
	errors     int
	firstErr   error
	latencies  []time.Duration // handshake durations, unsorted
	group      string          // key exchange of the last connection that had one
}

// request is the one request each connection sends.
const request = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"

// runLoad runs spec until its duration is up. Each worker first opens one
// connection with a verifying configuration (the server accepts this client
// and, in resumed mode, the worker obtains a session); that connection is
// not counted.
func runLoad(ctx context.Context, spec loadSpec) (loadResult, error) {
	var res loadResult
	cfgs := make([]*tls.Config, spec.concurrency)
	for i := range cfgs {
		cfg := spec.chain.verifyingConfig(spec.version)
		if spec.defaultKX {
			cfg.CurvePreferences = nil
		}
		if spec.resumed {
			cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		}
		if _, err := connectOnce(ctx, spec.addr, cfg); err != nil {
			return res, fmt.Errorf("first connection to %s: %w", spec.addr, err)
		}
		// Later connections check the server's signature but not its chain:
		// the client's cost is not what is measured, and on a shared
		// machine it takes CPU from the server.
		fast := cfg.Clone() // shares the session cache
		fast.InsecureSkipVerify = true
		cfgs[i] = fast
	}

	if spec.started != nil {
		if err := spec.started(); err != nil {
			return res, err
		}
	}
	start := time.Now()
	deadline := start.Add(spec.duration)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var w loadResult
			w.latencies = make([]time.Duration, 0, 1024)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				c, err := connectOnce(ctx, spec.addr, cfg)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					w.errors++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.latencies = append(w.latencies, c.handshake)
				if c.curve != 0 {
					w.group = c.curve.String()
				}
				if c.resumed {
					w.resumed++
				}
				if spec.count != nil {
					spec.count.Add(1)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.latencies = append(res.latencies, w.latencies...)
			res.resumed += w.resumed
			if w.group != "" {
				res.group = w.group
			}
			res.errors += w.errors
			if res.firstErr == nil {
				res.firstErr = w.firstErr
			}
		}()
	}
	wg.Wait()
	// A connection under way when the time is up completes and counts, so
	// the rate divides by the time until the last one ended.
	res.elapsed = time.Since(start)
	res.handshakes = len(res.latencies)
	return res, ctx.Err()
}

// connection is what connectOnce observed.
type connection struct {
	handshake time.Duration
	resumed   bool
	curve     tls.CurveID // the key exchange, when there was one
}

// connectOnce opens one connection, sends the request and reads the whole
// response, which must be a 200.
func connectOnce(ctx context.Context, addr string, cfg *tls.Config) (connection, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, took, err := tlsdial.Dial(ctx, addr, cfg)
	if err != nil {
		return connection{}, err
	}
	// No close_notify: every server sees the same TCP close.
	defer conn.NetConn().Close()
	st := conn.ConnectionState()
	c := connection{handshake: took, resumed: st.DidResume, curve: st.CurveID}
	if _, err := io.WriteString(conn, request); err != nil {
		return c, fmt.Errorf("request: %w", err)
	}
	br := bufio.NewReaderSize(conn, 512)
	status, err := br.ReadString('\n')
	if err != nil {
		return c, fmt.Errorf("response: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200") {
		return c, fmt.Errorf("response: %q, want HTTP/1.1 200", strings.TrimSpace(status))
	}
	if _, err := io.Copy(io.Discard, br); err != nil && !isCloseError(err) {
		return c, fmt.Errorf("response body: %w", err)
	}
	return c, nil
}

// isCloseError reports the ways servers end a "Connection: close" response
// that are not failures: a TCP reset after the body (OpenSSL-based servers
// may close without reading the client's last alert).
func isCloseError(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset by peer")
}
