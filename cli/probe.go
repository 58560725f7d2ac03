package cli

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/spf13/cobra"

	"github.com/tlsresume/caddy-tlsresume/internal/tlsdial"
)

func init() {
	registerSubcommand(func() *cobra.Command {
		var o probeOptions
		cmd := &cobra.Command{
			Use:   "probe [--count N] [--servername NAME] [--host HOST] [--cert c.pem --key c.key] [--ca ca.pem] [--tls 1.2|1.3|h3] [--early-data] [--interval d] HOST:PORT",
			Short: "Connects several times and prints whether each TLS handshake was full or resumed",
			Long: `
Connects to HOST:PORT --count times with one client session cache, optionally
presenting a client certificate, and prints one line per handshake: its
number, "full" or "resumed", the handshake's duration, the protocol, the
HTTP status, the lifetime of the session ticket the server sent on that
connection, and for HTTP/3 whether the server accepted early data (0-RTT). It
is the mutual-TLS aware counterpart of 'openssl s_client -reconnect' plus
curl's time_appconnect.

Each connection sends "HEAD /" and reads the response, so that TLS 1.3 session
tickets (sent after the handshake) reach the cache; any HTTPS server answers
it. --host sets the request's Host header (default: the server name), for
servers that route on a Host different from the SNI. Over HTTP/3 the HEAD
request is sent as early data when the session allows it.

--early-data (HTTP/3; implies --tls h3) sends "GET /" instead, written before
the handshake completes, so that it travels as 0-RTT whenever the session
allows it; each line then says whether the server accepted the early data
("accepted"), refused it ("rejected": the request is sent again after the
handshake), or none was sent ("no": a full handshake, or a ticket that allows
no early data).

The ticket lifetime is the ticket_lifetime of TLS 1.3's NewSessionTicket
("ticket 7200s"; "2 tickets" when the server sent several, the lifetime of
the last); "no ticket" when the server sent none. Go does not keep the
lifetime hint of a TLS 1.2 ticket, so TLS 1.2 lines say "ticket (TLS 1.2)".

Without the tls_resume app, Caddy disables session tickets on sites that
require client certificates, so every line says "full".

The command exits with an error if any connection failed.
`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				// From here on errors are about the connections, not usage.
				cmd.SilenceUsage = true
				o.addr = args[0]
				return runProbe(cmd.Context(), cmd.OutOrStdout(), o)
			},
		}
		f := cmd.Flags()
		f.IntVar(&o.count, "count", 5, "number of connections")
		f.StringVar(&o.serverName, "servername", "", "server name (SNI) to send and verify (default: the host of HOST:PORT)")
		f.StringVar(&o.host, "host", "", "HTTP Host header (default: the server name and port)")
		f.BoolVar(&o.earlyData, "early-data", false, "send GET / as HTTP/3 early data (0-RTT) and report whether the server accepted it (implies --tls h3)")
		f.StringVar(&o.certFile, "cert", "", "client certificate chain (PEM)")
		f.StringVar(&o.keyFile, "key", "", "client private key (PEM)")
		f.StringVar(&o.caFile, "ca", "", "CA certificates to verify the server with (PEM; default: the system's)")
		f.StringVar(&o.proto, "tls", "", `protocol: "1.2", "1.3" or "h3" (default: the best TLS over TCP)`)
		f.DurationVar(&o.interval, "interval", 0, "pause between connections")
		f.DurationVar(&o.timeout, "timeout", 10*time.Second, "time limit of each connection")
		return cmd
	})
}

type probeOptions struct {
	addr                      string
	count                     int
	serverName                string
	host                      string
	earlyData                 bool
	certFile, keyFile, caFile string
	proto                     string
	interval, timeout         time.Duration
}

// probeResult is one connection's outcome.
type probeResult struct {
	resumed   bool
	handshake time.Duration
	version   uint16
	h3        bool
	early     string // HTTP/3: "accepted", "rejected" or "no"
	status    int
	tickets   int           // tickets received on the connection
	lifetime  time.Duration // of the last one
	hasLife   bool          // lifetime known (TLS 1.3)
}

func (r probeResult) String() string {
	kind := "full"
	if r.resumed {
		kind = "resumed"
	}
	proto := tls.VersionName(r.version)
	if r.h3 {
		return fmt.Sprintf("%-7s  %9s  h3 (%s)  HTTP %d  %s  early data: %s", kind, roundDuration(r.handshake), proto, r.status, r.ticket(), r.early)
	}
	return fmt.Sprintf("%-7s  %9s  %s  HTTP %d  %s", kind, roundDuration(r.handshake), proto, r.status, r.ticket())
}

// ticket describes the session tickets the connection received.
func (r probeResult) ticket() string {
	switch {
	case r.tickets == 0:
		return "no ticket"
	case !r.hasLife:
		return "ticket (" + tls.VersionName(r.version) + ")"
	case r.tickets == 1:
		return fmt.Sprintf("ticket %ds", int64(r.lifetime/time.Second))
	default:
		return fmt.Sprintf("%d tickets %ds", r.tickets, int64(r.lifetime/time.Second))
	}
}

func roundDuration(d time.Duration) string {
	return d.Round(10 * time.Microsecond).String()
}

// tlsConfig builds the client configuration shared by every connection.
func (o probeOptions) tlsConfig() (*tls.Config, error) {
	host, _, err := net.SplitHostPort(o.addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %v", o.addr, err)
	}
	cfg := &tls.Config{
		ServerName:         o.serverName,
		ClientSessionCache: tls.NewLRUClientSessionCache(16),
		MinVersion:         tls.VersionTLS12,
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	switch o.proto {
	case "":
	case "1.2":
		cfg.MaxVersion = tls.VersionTLS12
	case "1.3", "h3":
		cfg.MinVersion = tls.VersionTLS13
	default:
		return nil, fmt.Errorf(`--tls: %q is not one of "1.2", "1.3", "h3"`, o.proto)
	}
	if o.proto == "h3" {
		cfg.NextProtos = []string{http3.NextProtoH3}
	} else {
		cfg.NextProtos = []string{"http/1.1"}
	}
	if (o.certFile == "") != (o.keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if o.certFile != "" {
		cert, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if o.caFile != "" {
		pemBytes, err := os.ReadFile(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("--ca: no PEM certificates in %s", o.caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

func runProbe(ctx context.Context, w io.Writer, o probeOptions) error {
	if o.count < 1 {
		return fmt.Errorf("--count: must be at least 1, got %d", o.count)
	}
	if o.interval < 0 || o.timeout <= 0 {
		return errors.New("--interval must not be negative and --timeout must be positive")
	}
	if o.earlyData {
		switch o.proto {
		case "":
			o.proto = "h3"
		case "h3":
		default:
			return fmt.Errorf("--early-data: needs --tls h3, got --tls %s (Go sends no early data over TCP)", o.proto)
		}
	}
	base, err := o.tlsConfig()
	if err != nil {
		return err
	}
	tickets := &probeCache{ClientSessionCache: base.ClientSessionCache, put: make(chan struct{}, 1)}
	base.ClientSessionCache = tickets
	failed := 0
	for i := 1; i <= o.count; i++ {
		if i > 1 && o.interval > 0 {
			select {
			case <-time.After(o.interval):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		cctx, cancel := context.WithTimeout(ctx, o.timeout)
		// One clock reading per connection: crypto/tls reads Time once
		// for a ticket's receipt and once for its use-by time, and the
		// lifetime printed is their difference (see
		// tlsdial.TicketLifetime). Certificates are checked against it
		// too; a connection lasts at most --timeout.
		cfg := base.Clone()
		now := time.Now()
		cfg.Time = func() time.Time { return now }
		tickets.reset()
		var res probeResult
		if o.proto == "h3" {
			res, err = probeH3(cctx, o, cfg, tickets)
		} else {
			res, err = probeTCP(cctx, o, cfg)
		}
		res.tickets, res.lifetime, res.hasLife = tickets.received()
		cancel()
		if err != nil {
			failed++
			fmt.Fprintf(w, "%d  error    %v\n", i, err)
			continue
		}
		fmt.Fprintf(w, "%d  %s\n", i, res)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d connections to %s failed", failed, o.count, o.addr)
	}
	return nil
}

// probeTCP makes one TLS connection, sends HEAD / and reads the response
// (which also takes in any TLS 1.3 session ticket).
func probeTCP(ctx context.Context, o probeOptions, cfg *tls.Config) (probeResult, error) {
	addr := o.addr
	conn, took, err := tlsdial.Dial(ctx, addr, cfg)
	if err != nil {
		return probeResult{}, err
	}
	defer conn.NetConn().Close()
	res := probeResult{handshake: took}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "https://"+hostPort(cfg.ServerName, addr)+"/", nil)
	if err != nil {
		return res, err
	}
	req.Close = true
	if o.host != "" {
		req.Host = o.host
	}
	if err := req.Write(conn); err != nil {
		return res, fmt.Errorf("sending HEAD /: %w", err)
	}
	// A server that refuses the client certificate after a TLS 1.3
	// handshake says so here.
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return res, fmt.Errorf("reading the response to HEAD /: %w", err)
	}
	resp.Body.Close()
	cs := conn.ConnectionState()
	res.resumed, res.version, res.status = cs.DidResume, cs.Version, resp.StatusCode
	return res, nil
}

// probeH3 makes one QUIC connection that may resume the cached session and
// send its request as early data, and reports whether the server accepted
// it. A request whose early data the server rejected is sent again once the
// handshake is complete.
func probeH3(ctx context.Context, o probeOptions, cfg *tls.Config, tickets *probeCache) (probeResult, error) {
	addr := o.addr
	method := http.MethodHead
	if o.earlyData {
		method = http.MethodGet
	}
	newRequest := func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, method, "https://"+hostPort(cfg.ServerName, addr)+"/", nil)
		if err == nil && o.host != "" {
			req.Host = o.host
		}
		return req, err
	}
	start := time.Now()
	conn, err := quic.DialAddrEarly(ctx, addr, cfg, &quic.Config{})
	if err != nil {
		return probeResult{}, fmt.Errorf("QUIC handshake: %w", err)
	}
	defer conn.CloseWithError(0, "")
	tr := &http3.Transport{}
	cc := tr.NewClientConn(conn)
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		return probeResult{}, fmt.Errorf("opening a request stream: %w", err)
	}
	req, err := newRequest()
	if err != nil {
		return probeResult{}, err
	}
	// Sent before the handshake completes: as 0-RTT data if the session
	// allows it.
	if err := str.SendRequestHeader(req); err != nil {
		return probeResult{}, fmt.Errorf("sending %s /: %w", method, err)
	}
	// As http3's own RoundTrip, ignore Close's error: it fails when the
	// server has answered and stopped reading the request already
	// (STOP_SENDING, RFC 9114 Section 4.1.2); the response decides.
	_ = str.Close()
	var res probeResult
	select {
	case <-conn.HandshakeComplete():
		res.handshake = time.Since(start)
	case <-conn.Context().Done():
		return res, fmt.Errorf("QUIC handshake: %w", context.Cause(conn.Context()))
	case <-ctx.Done():
		return res, fmt.Errorf("QUIC handshake: %w", ctx.Err())
	}
	cs := conn.ConnectionState()
	res.h3, res.resumed, res.version = true, cs.TLS.DidResume, cs.TLS.Version
	switch {
	case cs.Used0RTT:
		res.early = "accepted"
	case tickets.offeredEarly():
		res.early = "rejected"
	default:
		res.early = "no"
	}
	if res.early == "rejected" {
		// The early request was discarded: send it again over the
		// completed handshake (RFC 9114 Section 4.1.1, RFC 8470).
		next, err := conn.NextConnection(ctx)
		if err != nil {
			return res, fmt.Errorf("after the early data was rejected: %w", err)
		}
		cc = tr.NewClientConn(next)
		if str, err = cc.OpenRequestStream(ctx); err != nil {
			return res, fmt.Errorf("after the early data was rejected: opening a request stream: %w", err)
		}
		if req, err = newRequest(); err != nil {
			return res, err
		}
		if err := str.SendRequestHeader(req); err != nil {
			return res, fmt.Errorf("sending %s / again: %w", method, err)
		}
		_ = str.Close() // as above
	}
	resp, err := str.ReadResponse()
	if err != nil {
		return res, fmt.Errorf("reading the response to %s /: %w", method, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	res.status = resp.StatusCode
	// The session ticket may trail the response; give it a moment so the
	// next connection can resume.
	select {
	case <-tickets.put:
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	return res, nil
}

// probeCache is the probe's session cache: it remembers, per connection
// (reset between connections), the tickets the server sent and whether the
// session handed out for resumption allowed early data, and signals each
// stored ticket.
type probeCache struct {
	tls.ClientSessionCache
	put chan struct{}

	mu       sync.Mutex
	tickets  int
	lifetime time.Duration
	hasLife  bool
	early    bool
}

// Get implements tls.ClientSessionCache.
func (c *probeCache) Get(key string) (*tls.ClientSessionState, bool) {
	cs, ok := c.ClientSessionCache.Get(key)
	early := false
	if ok && cs != nil {
		if _, st, err := cs.ResumptionState(); err == nil && st != nil {
			early = st.EarlyData
		}
	}
	c.mu.Lock()
	c.early = early
	c.mu.Unlock()
	return cs, ok
}

// Put implements tls.ClientSessionCache.
func (c *probeCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs == nil {
		return
	}
	life, ok := tlsdial.TicketLifetime(cs)
	c.mu.Lock()
	c.tickets++
	c.lifetime, c.hasLife = life, ok
	c.mu.Unlock()
	select {
	case c.put <- struct{}{}:
	default:
	}
}

// reset forgets the previous connection's tickets and signal.
func (c *probeCache) reset() {
	c.mu.Lock()
	c.tickets, c.lifetime, c.hasLife, c.early = 0, 0, false, false
	c.mu.Unlock()
	select {
	case <-c.put:
	default:
	}
}

func (c *probeCache) received() (n int, lifetime time.Duration, known bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tickets, c.lifetime, c.hasLife
}

// offeredEarly reports whether the session offered on this connection
// allowed early data (so the client sent its request as 0-RTT).
func (c *probeCache) offeredEarly() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.early
}

// hostPort is the request authority: the server name with addr's port.
func hostPort(serverName, addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(serverName, port)
}
