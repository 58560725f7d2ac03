package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"slices"
	"sync/atomic"
	"time"
)

// cell is one combination the matrix measures every server in.
type cell struct {
	Chain   string `json:"chain"` // "ECDSA P-256" or "RSA-2048"
	chain   int    // index into the chains
	Version string `json:"version"` // "1.2" or "1.3"
	Resumed bool   `json:"resumed"` // clients resume (else every handshake is full)
	// KX is the client's key-exchange offer: "" for X25519 first (the
	// rows every server can match), kxDefault for Go's default list
	// (X25519MLKEM768 first in TLS 1.3).
	KX string `json:"kx,omitempty"`
}

// kxDefault names the client's default key-exchange offer.
const kxDefault = "default"

func (c cell) mode() string {
	if c.Resumed {
		return "resumed"
	}
	return "full"
}

func (c cell) String() string {
	s := fmt.Sprintf("%s TLS %s %s", c.Chain, c.Version, c.mode())
	if c.KX == kxDefault {
		s += ", default key exchange"
	}
	return s
}

// kxLabel is the client's key-exchange offer in a report.
func (c cell) kxLabel() string {
	if c.KX == kxDefault {
		return "client default"
	}
	return "X25519"
}

func (c cell) tlsVersion() uint16 {
	if c.Version == "1.2" {
		return tls.VersionTLS12
	}
	return tls.VersionTLS13
}

// cells is every chain × TLS version × mode for the two-level chains,
// plus the client's default key exchange (TLS 1.3, full and resumed) on
// the ECDSA chain, and resumption only on the one-level chain (TLS 1.3
// with both key-exchange offers, TLS 1.2).
func cells(chains []*chain) []cell {
	var cs []cell
	for i, ch := range chains {
		switch ch.slug {
		case "ecdsa1":
			cs = append(cs,
				cell{Chain: ch.name, chain: i, Version: "1.3", Resumed: true},
				cell{Chain: ch.name, chain: i, Version: "1.3", Resumed: true, KX: kxDefault},
				cell{Chain: ch.name, chain: i, Version: "1.2", Resumed: true})
			continue
		}
		for _, v := range []string{"1.3", "1.2"} {
			for _, resumed := range []bool{false, true} {
				cs = append(cs, cell{Chain: ch.name, chain: i, Version: v, Resumed: resumed})
			}
		}
		if ch.slug == "ecdsa" {
			for _, resumed := range []bool{false, true} {
				cs = append(cs, cell{Chain: ch.name, chain: i, Version: "1.3", Resumed: resumed, KX: kxDefault})
			}
		}
	}
	return cs
}

// runsIn reports whether server s is measured in cell c: the floor (no
// client authentication) only where sessions are resumed.
func runsIn(s *server, c cell) bool { return c.Resumed || !s.resumedOnly }

// sample is one server measured in one cell in one round.
type sample struct {
	Round int `json:"round"`
	// HandshakesPerSec is connections completed per second under load.
	HandshakesPerSec float64 `json:"handshakes_per_sec"`
	// ResumedFraction is the share of those connections that resumed.
	ResumedFraction float64 `json:"resumed_fraction"`
	// CPUPerHandshake is the server's CPU time (user + system, all its
	// processes and threads) divided by the handshakes, in microseconds.
	CPUPerHandshake float64 `json:"cpu_us_per_handshake"`
	// ServerBusy is the server's CPU time divided by the wall time (1 =
	// one core fully used): below 1 the client, not the server, set the
	// pace.
	ServerBusy float64 `json:"server_busy"`
	// ClientBusy is the load generator's CPU time over the wall time, in
	// cores: near the number of client CPUs, the client was the limit.
	ClientBusy float64 `json:"client_busy"`
	// P50 and P99 are handshake latencies of one client connecting
	// alone, in microseconds.
	P50    float64 `json:"p50_us"`
	P99    float64 `json:"p99_us"`
	Errors int     `json:"errors"`
	// Group is the key exchange the server chose (TLS 1.3 and full TLS
	// 1.2 handshakes), as Go names it; empty when none took place.
	Group string `json:"group,omitempty"`
}

// cellResult is every sample of one server in one cell.
type cellResult struct {
	Cell    cell     `json:"cell"`
	Server  string   `json:"server"`
	Samples []sample `json:"samples"`
}

// matrixOptions are the knobs of the matrix run.
type matrixOptions struct {
	rounds          int
	duration        time.Duration // under load, per sample
	latencyDuration time.Duration // one client, per sample
	concurrency     int
}

// runMatrix measures every running server in every cell, rounds times. In
// each round the servers of a cell run back to back, in an order reversed
// every other round (A B C, C B A, …), so that pairs compared later ran
// close together and no server always runs first.
func runMatrix(ctx context.Context, o matrixOptions, chains []*chain, cs []cell, running []*runningServer, prog *progress) ([]*cellResult, error) {
	results := map[[2]int]*cellResult{}
	var out []*cellResult
	for ci, c := range cs {
		for si, rs := range running {
			if !runsIn(rs.server, c) {
				continue
			}
			r := &cellResult{Cell: c, Server: rs.server.id}
			results[[2]int{ci, si}] = r
			out = append(out, r)
		}
	}
	for round := range o.rounds {
		for ci, c := range cs {
			order := make([]int, len(running))
			for i := range order {
				order[i] = i
			}
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, si := range order {
				rs := running[si]
				if !runsIn(rs.server, c) {
					continue
				}
				label := fmt.Sprintf("round %d/%d  %-8s %s", round+1, o.rounds, rs.server.id, c)
				s, err := measure(ctx, o, chains[c.chain], c, rs, prog, label)
				if err != nil {
					return nil, fmt.Errorf("%s, %s, round %d: %w", rs.server.label, c, round+1, err)
				}
				s.Round = round + 1
				results[[2]int{ci, si}].Samples = append(results[[2]int{ci, si}].Samples, s)
			}
		}
	}
	return out, nil
}

// measure takes one sample: a run under load with the server's CPU time
// read before and after, then a run with one client for latency.
func measure(ctx context.Context, o matrixOptions, ch *chain, c cell, rs *runningServer, prog *progress, label string) (sample, error) {
	addr := rs.addrs[c.chain]
	var count atomic.Int64
	prog.begin(label, o.duration+o.latencyDuration, &count)
	defer prog.end()

	var cpuBefore, clientBefore time.Duration
	load, err := runLoad(ctx, loadSpec{
		addr: addr, chain: ch, version: c.tlsVersion(), resumed: c.Resumed, defaultKX: c.KX == kxDefault,
		concurrency: o.concurrency, duration: o.duration, count: &count,
		started: func() (err error) {
			if clientBefore, err = processCPU(os.Getpid()); err != nil {
				return err
			}
			cpuBefore, err = processTreeCPU(rs.proc.pid())
			return err
		},
	})
	if err != nil {
		return sample{}, err
	}
	cpuAfter, err := processTreeCPU(rs.proc.pid())
	if err != nil {
		return sample{}, fmt.Errorf("%w (%v)", err, rs.proc.exited())
	}
	clientAfter, err := processCPU(os.Getpid())
	if err != nil {
		return sample{}, err
	}
	if load.handshakes == 0 {
		return sample{}, fmt.Errorf("no connection succeeded (%d errors, first: %v)", load.errors, load.firstErr)
	}
	lat, err := runLoad(ctx, loadSpec{
		addr: addr, chain: ch, version: c.tlsVersion(), resumed: c.Resumed, defaultKX: c.KX == kxDefault,
		concurrency: 1, duration: o.latencyDuration, count: &count,
	})
	if err != nil {
		return sample{}, err
	}
	cpu := cpuAfter - cpuBefore
	return sample{
		HandshakesPerSec: float64(load.handshakes) / load.elapsed.Seconds(),
		ResumedFraction:  float64(load.resumed) / float64(load.handshakes),
		CPUPerHandshake:  micros(cpu) / float64(load.handshakes),
		ServerBusy:       cpu.Seconds() / load.elapsed.Seconds(),
		ClientBusy:       (clientAfter - clientBefore).Seconds() / load.elapsed.Seconds(),
		P50:              micros(percentile(lat.latencies, 50)),
		P99:              micros(percentile(lat.latencies, 99)),
		Errors:           load.errors + lat.errors,
		Group:            load.group,
	}, nil
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
