package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/tlsresume/caddy-tlsresume/internal/tlsdial"
)

func init() {
	registerSubcommand(func() *cobra.Command {
		var o benchOptions
		cmd := &cobra.Command{
			Use:   "bench [--duration d] [--concurrency N] [--mode full|resumed|both] [--servername NAME] [--cert c.pem --key c.key] [--ca ca.pem] [--tls 1.2|1.3] HOST:PORT",
			Short: "Measures TLS handshakes per second, full and resumed",
			Long: `
Opens TLS connections to HOST:PORT from --concurrency workers for --duration
and reports handshakes per second and handshake latency (median, 99th
percentile). --mode full gives every connection an empty session cache;
--mode resumed lets each worker resume the session it obtained first (a
server that does not resume shows 0 resumed); --mode both runs full, then
resumed, and prints the speed-up. Each connection only completes the
handshake and closes; only each worker's first connection sends a request (HEAD /),
which checks that the server accepts the client and obtains the session.

Runs longer than a few seconds show progress once a second on stderr.
`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cmd.SilenceUsage = true
				o.probe.addr = args[0]
				return runBench(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), o)
			},
		}
		f := cmd.Flags()
		f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run each mode")
		f.IntVar(&o.concurrency, "concurrency", 4, "concurrent connections")
		f.StringVar(&o.mode, "mode", "both", `"full", "resumed" or "both"`)
		f.StringVar(&o.probe.serverName, "servername", "", "server name (SNI) to send and verify (default: the host of HOST:PORT)")
		f.StringVar(&o.probe.certFile, "cert", "", "client certificate chain (PEM)")
		f.StringVar(&o.probe.keyFile, "key", "", "client private key (PEM)")
		f.StringVar(&o.probe.caFile, "ca", "", "CA certificates to verify the server with (PEM; default: the system's)")
		f.StringVar(&o.probe.proto, "tls", "", `TLS version: "1.2" or "1.3" (default: the best)`)
		f.DurationVar(&o.probe.timeout, "timeout", 10*time.Second, "time limit of each connection")
		return cmd
	})
}

type benchOptions struct {
	probe       probeOptions
	duration    time.Duration
	concurrency int
	mode        string
	// progressEvery is the progress interval (tests shorten it).
	progressEvery time.Duration
}

// benchResult sums one mode's run.
type benchResult struct {
	mode             string
	elapsed          time.Duration
	handshakes       int
	resumed          int
	errors           int
	firstErr         error
	p50, p99         time.Duration
	handshakesPerSec float64
}

func (r benchResult) String() string {
	s := fmt.Sprintf("%-7s  %8.1f handshakes/s  %d handshakes (%d resumed) in %s  p50 %s  p99 %s",
		r.mode, r.handshakesPerSec, r.handshakes, r.resumed, r.elapsed.Round(time.Millisecond), roundDuration(r.p50), roundDuration(r.p99))
	if r.errors > 0 {
		s += fmt.Sprintf("  %d errors (first: %v)", r.errors, r.firstErr)
	}
	return s
}

func runBench(ctx context.Context, out, progress io.Writer, o benchOptions) error {
	switch {
	case o.duration <= 0:
		return fmt.Errorf("--duration: must be positive, got %s", o.duration)
	case o.concurrency < 1:
		return fmt.Errorf("--concurrency: must be at least 1, got %d", o.concurrency)
	case o.probe.proto == "h3":
		return errors.New("--tls: h3 is not supported by bench; use 1.2 or 1.3")
	}
	var modes []string
	switch o.mode {
	case "full", "resumed":
		modes = []string{o.mode}
	case "both":
		modes = []string{"full", "resumed"}
	default:
		return fmt.Errorf(`--mode: %q is not one of "full", "resumed", "both"`, o.mode)
	}
	if o.progressEvery == 0 {
		o.progressEvery = time.Second
	}
	if _, err := o.probe.tlsConfig(); err != nil {
		return err
	}
	var results []benchResult
	for _, mode := range modes {
		r, err := benchMode(ctx, progress, o, mode)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, r)
		results = append(results, r)
		if r.handshakes == 0 {
			return fmt.Errorf("%s: no handshake succeeded: %v", mode, r.firstErr)
		}
	}
	if len(results) == 2 && results[0].handshakesPerSec > 0 {
		fmt.Fprintf(out, "resumed/full: %.2fx handshakes per second\n", results[1].handshakesPerSec/results[0].handshakesPerSec)
	}
	return nil
}

// benchMode runs one mode for o.duration.
func benchMode(ctx context.Context, progress io.Writer, o benchOptions, mode string) (benchResult, error) {
	res := benchResult{mode: mode}
	var count atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration

	// Every worker gets its own configuration (and session cache); in
	// resumed mode it first obtains a session with a request.
	cfgs := make([]*tls.Config, o.concurrency)
	for i := range cfgs {
		cfg, err := o.probe.tlsConfig()
		if err != nil {
			return res, err
		}
		if mode == "full" {
			cfg.ClientSessionCache = nil
		}
		// One request first: it shows the server accepts this client
		// (a TLS 1.3 server refuses a certificate only after the
		// handshake) and, in resumed mode, obtains the session.
		pctx, cancel := context.WithTimeout(ctx, o.probe.timeout)
		_, err = probeTCP(pctx, o.probe, cfg)
		cancel()
		if err != nil {
			return res, fmt.Errorf("%s: first connection: %w", mode, err)
		}
		cfgs[i] = cfg
	}

	start := time.Now()
	deadline := start.Add(o.duration)
	done := make(chan struct{})
	progressDone := make(chan struct{})
	if o.duration > 3*o.progressEvery {
		go func() {
			defer close(progressDone)
			t := time.NewTicker(o.progressEvery)
			defer t.Stop()
			for {
				select {
				case <-done:
					fmt.Fprint(progress, "\r\033[K")
					return
				case now := <-t.C:
					el := now.Sub(start)
					n := count.Load()
					fmt.Fprintf(progress, "\r\033[K%s %s/%s  %d handshakes  %.0f/s", mode, el.Round(time.Second), o.duration, n, float64(n)/el.Seconds())
				}
			}
		}()
	} else {
		close(progressDone)
	}
	var wg sync.WaitGroup
	for _, cfg := range cfgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			resumed, errs := 0, 0
			var firstErr error
			// A connection under way when the time is up completes and
			// counts; the rate divides by the time until the last one.
			for time.Now().Before(deadline) && ctx.Err() == nil {
				d, didResume, err := benchHandshake(ctx, o.probe.addr, cfg, o.probe.timeout)
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				count.Add(1)
				local = append(local, d)
				if didResume {
					resumed++
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			res.resumed += resumed
			res.errors += errs
			if res.firstErr == nil {
				res.firstErr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(done)
	<-progressDone // no progress output after the result
	res.elapsed = time.Since(start)
	res.handshakes = len(latencies)
	res.handshakesPerSec = float64(res.handshakes) / res.elapsed.Seconds()
	if len(latencies) > 0 {
		slices.Sort(latencies)
		res.p50 = latencies[len(latencies)/2]
		res.p99 = latencies[min(len(latencies)-1, len(latencies)*99/100)]
	}
	return res, nil
}

// benchHandshake dials addr, completes one handshake and closes.
func benchHandshake(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) (time.Duration, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, elapsed, err := tlsdial.Dial(ctx, addr, cfg)
	if err != nil {
		return 0, false, err
	}
	resumed := conn.ConnectionState().DidResume
	_ = conn.Close()
	return elapsed, resumed, nil
}
