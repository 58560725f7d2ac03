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
			Use:   "probe [--count N] [--servername NAME] [--cert c.pem --key c.key] [--ca ca.pem] [--tls 1.2|1.3|h3] [--interval d] HOST:PORT",
			Short: "Connects several times and prints whether each TLS handshake was full or resumed",
			Long: `
Connects to HOST:PORT --count times with one client session cache, optionally
presenting a client certificate, and prints one line per handshake: its
number, "full" or "resumed", the handshake's duration, the protocol, and for
HTTP/3 whether the server accepted early data (0-RTT). It is the mutual-TLS
aware counterpart of 'openssl s_client -reconnect' plus curl's
time_appconnect.

Each connection sends "HEAD /" and reads the response, so that TLS 1.3 session
tickets (sent after the handshake) reach the cache; any HTTPS server answers
it. Over HTTP/3 the HEAD request is sent as early data when the session
allows it.

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
	early     bool
	status    int
}

func (r probeResult) String() string {
	kind := "full"
	if r.resumed {
		kind = "resumed"
	}
	proto := tls.VersionName(r.version)
	if r.h3 {
		early := "no"
		if r.early {
			early = "accepted"
		}
		return fmt.Sprintf("%-7s  %9s  h3 (%s)  HTTP %d  early data: %s", kind, roundDuration(r.handshake), proto, r.status, early)
	}
	return fmt.Sprintf("%-7s  %9s  %s  HTTP %d", kind, roundDuration(r.handshake), proto, r.status)
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
	cfg, err := o.tlsConfig()
	if err != nil {
		return err
	}
	var tickets *ticketSignal
	if o.proto == "h3" {
		tickets = &ticketSignal{ClientSessionCache: cfg.ClientSessionCache, put: make(chan struct{}, 1)}
		cfg.ClientSessionCache = tickets
	}
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
		var res probeResult
		if o.proto == "h3" {
			res, err = probeH3(cctx, o.addr, cfg, tickets)
		} else {
			res, err = probeTCP(cctx, o.addr, cfg)
		}
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
func probeTCP(ctx context.Context, addr string, cfg *tls.Config) (probeResult, error) {
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
// send HEAD / as early data, and reports whether the server accepted it.
func probeH3(ctx context.Context, addr string, cfg *tls.Config, tickets *ticketSignal) (probeResult, error) {
	tickets.drain()
	start := time.Now()
	conn, err := quic.DialAddrEarly(ctx, addr, cfg, &quic.Config{})
	if err != nil {
		return probeResult{}, fmt.Errorf("QUIC handshake: %w", err)
	}
	defer conn.CloseWithError(0, "")
	cc := (&http3.Transport{}).NewClientConn(conn)
	str, err := cc.OpenRequestStream(ctx)
	if err != nil {
		return probeResult{}, fmt.Errorf("opening a request stream: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "https://"+hostPort(cfg.ServerName, addr)+"/", nil)
	if err != nil {
		return probeResult{}, err
	}
	// Sent before the handshake completes: as 0-RTT data if the session
	// allows it.
	if err := str.SendRequestHeader(req); err != nil {
		return probeResult{}, fmt.Errorf("sending HEAD /: %w", err)
	}
	if err := str.Close(); err != nil {
		return probeResult{}, fmt.Errorf("sending HEAD /: %w", err)
	}
	var res probeResult
	select {
	case <-conn.HandshakeComplete():
		res.handshake = time.Since(start)
	case <-conn.Context().Done():
		return res, fmt.Errorf("QUIC handshake: %w", context.Cause(conn.Context()))
	case <-ctx.Done():
		return res, fmt.Errorf("QUIC handshake: %w", ctx.Err())
	}
	resp, err := str.ReadResponse()
	if err != nil {
		return res, fmt.Errorf("reading the response to HEAD /: %w", err)
	}
	resp.Body.Close()
	cs := conn.ConnectionState()
	res.h3, res.resumed, res.early, res.version, res.status = true, cs.TLS.DidResume, cs.Used0RTT, cs.TLS.Version, resp.StatusCode
	// The session ticket may trail the response; give it a moment so the
	// next connection can resume.
	select {
	case <-tickets.put:
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	return res, nil
}

// ticketSignal is a session cache that signals each stored ticket.
type ticketSignal struct {
	tls.ClientSessionCache
	put chan struct{}
}

func (c *ticketSignal) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case c.put <- struct{}{}:
		default:
		}
	}
}

func (c *ticketSignal) drain() {
	select {
	case <-c.put:
	default:
	}
}

// hostPort is the request authority: the server name with addr's port.
func hostPort(serverName, addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(serverName, port)
}
