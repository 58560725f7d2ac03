package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"

	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
	"github.com/tlsresume/caddy-tlsresume/storage"
)

// `bench scale` measures the Redis session store's scale limits on this
// machine: Redis memory per stored session (from real mTLS sessions
// stored by Caddy), resumed handshake latency with 1,000,000 sessions
// stored, and the hit rate of the store's in-process cache at several
// sizes. It prints a markdown section and, with -out, writes it into
// RELIABILITY.md between its markers.

type scaleOptions struct {
	sessions int
	real     int
	conns    int
	out      string
	caddy    string
}

func runScale(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o scaleOptions
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.sessions, "sessions", 1_000_000, "sessions to fill Redis with")
	fs.IntVar(&o.real, "real", 2000, "real sessions to store through Caddy to measure their size")
	fs.IntVar(&o.conns, "conns", 3000, "resumed handshakes measured per latency run")
	fs.StringVar(&o.out, "out", "", `file to write the section into ("" = stdout only)`)
	fs.StringVar(&o.caddy, "caddy", "", "a Caddy binary with the plugin (default: build one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	md, err := scale(ctx, o, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, md)
	if o.out != "" {
		return writeMarked(o.out, scaleBegin, scaleEnd, md)
	}
	return nil
}

const (
	scaleBegin = "<!-- scale:begin (written by go run ./bench scale; edit outside these markers) -->"
	scaleEnd   = "<!-- scale:end -->"
)

func scale(ctx context.Context, o scaleOptions, stderr io.Writer) (string, error) {
	so := soakOptions{rotation: 12 * time.Hour, poll: 2 * time.Second, skew: time.Second, clients: 8, revoked: 1, pluginBin: o.caddy}
	work, err := os.MkdirTemp("", "tlsresume-scale-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	if so.pluginBin == "" {
		fmt.Fprintln(stderr, "scale: building Caddy with the plugin…")
		if _, so.pluginBin, err = buildCaddys(filepath.Join(work, "bin")); err != nil {
			return "", err
		}
	}
	// Two store nodes: sessions stored by one and resumed on the other
	// miss the in-process cache and go to Redis.
	e, err := startSoakNodes(ctx, so, work, 2)
	defer e.stop()
	if err != nil {
		return "", err
	}
	rc := redis.NewClient(&redis.Options{Addr: e.redis.Addr})
	defer rc.Close()

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	// Both nodes hold the ring: a session one stores resumes on the other.
	deadline := time.Now().Add(30 * time.Second)
	for {
		cfg := e.clientConfig(e.ids[0], tls.VersionTLS13)
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		_, err := connectOnce(ctx, e.nodes[0].addr, cfg)
		var c connection
		if err == nil {
			c, err = connectOnce(ctx, e.nodes[1].addr, cfg)
		}
		if err == nil && c.resumed {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("node1 does not resume node0's sessions after 30s (%v)", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := rc.FlushAll(ctx).Err(); err != nil {
		return "", err
	}

	// 1. Memory per real session.
	mem0, err := usedMemory(ctx, rc)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "scale: storing %d real sessions through Caddy…\n", o.real)
	for i := range o.real {
		id := e.ids[i%len(e.ids)]
		cfg := e.clientConfig(id, tls.VersionTLS13)
		// A fresh cache: a full handshake, and one new stored session (a
		// Go client without a cache asks for no tickets).
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		if _, err := connectOnce(ctx, e.nodes[i%2].addr, cfg); err != nil {
			return "", fmt.Errorf("real session %d: %w", i, err)
		}
	}
	mem1, err := usedMemory(ctx, rc)
	if err != nil {
		return "", err
	}
	keys, err := rc.Keys(ctx, "tls_resume:s:*").Result()
	if err != nil || len(keys) == 0 {
		keys, err = rc.Keys(ctx, "*s:{*").Result()
	}
	if err != nil || len(keys) == 0 {
		all, _ := rc.Keys(ctx, "*").Result()
		return "", fmt.Errorf("no session keys in Redis after %d full handshakes (%v); keys: %.5q", o.real, err, all)
	}
	var valueBytes int64
	for _, k := range keys[:min(len(keys), 200)] {
		n, _ := rc.StrLen(ctx, k).Result()
		valueBytes += n
	}
	valueSize := int(valueBytes / int64(min(len(keys), 200)))
	prefix := keys[0][:strings.Index(keys[0], "s:{")]
	perReal := float64(mem1-mem0) / float64(len(keys))

	// 2. Resumed handshakes, then the same after filling Redis.
	lat0, err := resumedLatency(ctx, e, o.conns)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "scale: filling Redis with %d sessions of %d bytes…\n", o.sessions, valueSize)
	fillStart := time.Now()
	if err := fillSessions(ctx, rc, prefix, o.sessions, valueSize); err != nil {
		return "", err
	}
	fillTook := time.Since(fillStart)
	mem2, err := usedMemory(ctx, rc)
	if err != nil {
		return "", err
	}
	perFill := float64(mem2-mem1) / float64(o.sessions)
	lat1, err := resumedLatency(ctx, e, o.conns)
	if err != nil {
		return "", err
	}

	p("## Scale limits: the Redis session store\n\n")
	p("Measured with `cd bench && go run . scale`: %s on loopback, two Caddy nodes with `session_store redis` (defaults), TLS 1.3 mTLS clients with an ECDSA P-256 root → intermediate → leaf chain.\n\n", redisVersion())
	p("| measure | value |\n|---|---:|\n")
	p("| real mTLS sessions stored by Caddy | %d |\n", len(keys))
	p("| stored value (sealed session state), mean | %d bytes |\n", valueSize)
	p("| Redis memory per real session (session key + the client certificate's index set) | %.0f bytes |\n", perReal)
	p("| Redis memory per session at %d sessions (same value size, one client certificate each) | %.0f bytes |\n", o.sessions, perFill)
	p("| Redis `used_memory` with %d sessions | %.0f MiB |\n", o.sessions+len(keys), float64(mem2)/(1<<20))
	p("| filling %d sessions over one pipelined connection | %s |\n", o.sessions, fillTook.Round(100*time.Millisecond))
	p("\nResumed handshakes (TLS 1.3, one client at a time, each resuming on the node that did not issue its session, so every one reads Redis), %d per run:\n\n", o.conns)
	p("| sessions in Redis | p50 | p99 | resumed |\n|---:|---:|---:|---:|\n")
	p("| %d | %s | %s | %.1f%% |\n", len(keys), ms(lat0.p50)+" ms", ms(lat0.p99)+" ms", 100*lat0.rate)
	p("| %d | %s | %s | %.1f%% |\n", o.sessions+len(keys), ms(lat1.p50)+" ms", ms(lat1.p99)+" ms", 100*lat1.rate)

	// 3. In-process cache hit rate.
	p("\n%s", cacheHitRates(ctx, e.redis.Addr, valueSize, stderr))
	return b.String(), nil
}

// redisVersion is redis-server's version line.
func redisVersion() string {
	bin, err := testredis.Binary()
	if err != nil {
		return "redis-server (version unknown)"
	}
	return firstLine(exec.Command(bin, "--version").Output())
}

func usedMemory(ctx context.Context, rc *redis.Client) (int64, error) {
	info, err := rc.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "used_memory:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("INFO memory: no used_memory")
}

// fillSessions stores n synthetic sessions as the store lays them out: the
// session under its key with a 30-minute TTL, and its handle in its client
// certificate's index set.
func fillSessions(ctx context.Context, rc *redis.Client, prefix string, n, size int) error {
	value := make([]byte, size)
	handle := make([]byte, 32)
	leaf := make([]byte, 32)
	const batch = 2000
	for i := 0; i < n; i += batch {
		pipe := rc.Pipeline()
		for range min(batch, n-i) {
			_, _ = rand.Read(handle)
			_, _ = rand.Read(leaf)
			_, _ = rand.Read(value[:32])
			h := hex.EncodeToString(handle)
			pipe.Set(ctx, prefix+"s:{"+h+"}", value, 30*time.Minute)
			lk := prefix + "l:" + hex.EncodeToString(leaf)
			pipe.SAdd(ctx, lk, h)
			pipe.PExpire(ctx, lk, 30*time.Minute)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

type latencyResult struct {
	p50, p99 time.Duration
	rate     float64
}

// resumedLatency: 8 clients, each with its own session; each connection
// goes to the node that did not issue the client's current session.
func resumedLatency(ctx context.Context, e *soakEnv, conns int) (latencyResult, error) {
	var lat []time.Duration
	resumed := 0
	var cfgs []*tls.Config
	for i := range 8 {
		cfg := e.clientConfig(e.ids[i], tls.VersionTLS13)
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
		if _, err := connectOnce(ctx, e.nodes[0].addr, cfg); err != nil {
			return latencyResult{}, err
		}
		cfgs = append(cfgs, cfg)
	}
	for i := range conns {
		c, err := connectOnce(ctx, e.nodes[(i/8+1)%2].addr, cfgs[i%8])
		if err != nil {
			return latencyResult{}, err
		}
		lat = append(lat, c.handshake)
		if c.resumed {
			resumed++
		}
	}
	return latencyResult{p50: percentile(lat, 50), p99: percentile(lat, 99), rate: float64(resumed) / float64(conns)}, nil
}

// cacheHitRates drives the store's API directly, as the handshake path
// does: W clients resume over and over; every resumption reads the
// client's session (Get) and, in TLS 1.3, stores the new one (Put). Three
// nodes (three stores, each with its own in-process cache of a given
// size) share one Redis. Behind a sticky load balancer a client comes
// back to the node that stored its session; round robin sends it to
// another. A read the cache cannot answer goes to Redis, so the hit rate
// is 1 − (Redis GETs / reads).
func cacheHitRates(ctx context.Context, addr string, valueSize int, stderr io.Writer) string {
	const clients, rounds = 20000, 3
	var b strings.Builder
	fmt.Fprintf(&b, "In-process cache hit rate (`local_cache_entries`, default %d): %d clients, each resuming %d times, through the store's API on 3 nodes sharing this Redis; TLS 1.3 (each resumption stores a new session) and TLS 1.2 (a client keeps its session).\n\n", storage.DefaultRedisLocalCacheEntries, clients, rounds)
	b.WriteString("| cache entries | TLS 1.3, sticky | TLS 1.3, round robin | TLS 1.2, sticky | TLS 1.2, round robin |\n|---:|---:|---:|---:|---:|\n")
	value := make([]byte, valueSize)
	for _, entries := range []int{1000, 10000, 100000} {
		fmt.Fprintf(&b, "| %d |", entries)
		for _, mode := range []struct{ tls13, sticky bool }{{true, true}, {true, false}, {false, true}, {false, false}} {
			rate, err := hitRate(ctx, addr, entries, clients, rounds, mode.tls13, mode.sticky, value)
			if err != nil {
				fmt.Fprintf(&b, " error: %v |", err)
				continue
			}
			fmt.Fprintf(&b, " %.1f%% |", 100*rate)
		}
		b.WriteString("\n")
		fmt.Fprintf(stderr, "scale: cache hit rates at %d entries done\n", entries)
	}
	return b.String()
}

func hitRate(ctx context.Context, addr string, entries, clients, rounds int, tls13, sticky bool, value []byte) (float64, error) {
	prefix := fmt.Sprintf("hit%d:", mrand.Int64())
	var stores []*storage.RedisStore
	for range 3 {
		s := &storage.RedisStore{Addresses: []string{addr}, KeyPrefix: prefix, LocalCacheEntries: entries}
		if err := s.Provision(caddy.Context{}); err != nil {
			return 0, err
		}
		if err := s.Validate(); err != nil {
			s.Close()
			return 0, err
		}
		defer s.Close()
		stores = append(stores, s)
	}
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	handles := make([][]byte, clients)
	home := make([]int, clients)
	var leaf [32]byte
	for i := range handles {
		handles[i] = randomBytes(32)
		home[i] = i % 3
		if err := stores[home[i]].Put(ctx, handles[i], value, leaf, 30*time.Minute); err != nil {
			return 0, err
		}
	}
	before, err := getCalls(ctx, rc)
	if err != nil {
		return 0, err
	}
	reads := 0
	for r := range rounds {
		for i := range handles {
			node := home[i]
			if !sticky {
				node = (home[i] + 1 + r) % 3
			}
			if _, err := stores[node].Get(ctx, handles[i]); err != nil {
				return 0, fmt.Errorf("get: %w", err)
			}
			reads++
			if tls13 {
				handles[i] = randomBytes(32)
				if err := stores[node].Put(ctx, handles[i], value, leaf, 30*time.Minute); err != nil {
					return 0, err
				}
			}
			home[i] = node
		}
	}
	after, err := getCalls(ctx, rc)
	if err != nil {
		return 0, err
	}
	return 1 - float64(after-before)/float64(reads), nil
}

// getCalls is Redis's count of GET commands served.
func getCalls(ctx context.Context, rc *redis.Client) (int64, error) {
	info, err := rc.Info(ctx, "commandstats").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_get:calls="); ok {
			n, _, _ := strings.Cut(v, ",")
			return strconv.ParseInt(n, 10, 64)
		}
	}
	return 0, nil
}
