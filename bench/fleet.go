package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A fleet is three Caddy processes on one shared storage, as behind a load
// balancer. Clients spread their connections round robin over the nodes, so
// nearly every connection offers a session another node issued, while the
// ticket keys rotate several times.

// fleetSetup is one fleet configuration the benchmark measures.
type fleetSetup struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	// MTLS is whether clients authenticate with certificates.
	MTLS bool `json:"mtls"`
	// start starts node i of the fleet in dir, sharing storage.
	start func(e *benchEnv, i int, dir, storage string, ch *chain, rotation time.Duration) (node *fleetNode, err error)
}

// fleetNode is one running node.
type fleetNode struct {
	proc      *process
	addr      string
	adminAddr string
}

var fleetSetups = []*fleetSetup{
	{ID: "caddy-standard", Label: "Caddy (stock), standard STEK, no client auth", start: stockFleetNode("standard")},
	{ID: "caddy-distributed", Label: "Caddy (stock), distributed STEK, no client auth", start: stockFleetNode("distributed")},
	{ID: "plugin", Label: "Caddy + tls_resume, mTLS", MTLS: true, start: pluginFleetNode},
}

// fleetResult is what one fleet run measured.
type fleetResult struct {
	Setup       *fleetSetup `json:"setup"`
	Nodes       int         `json:"nodes"`
	Concurrency int         `json:"concurrency"`
	Duration    float64     `json:"duration_s"`
	Rotation    float64     `json:"rotation_interval_s"`
	Connections int         `json:"connections"` // after each client's first
	Resumed     int         `json:"resumed"`
	Errors      int         `json:"errors"`
	// Rotations is the fewest key rotations any node counted in its
	// metrics; -1 where the server does not expose a count (stock Caddy),
	// in which case the report gives the scheduled number.
	Rotations int `json:"rotations"`
}

func (r fleetResult) rate() float64 {
	if r.Connections == 0 {
		return 0
	}
	return float64(r.Resumed) / float64(r.Connections)
}

// fleetOptions are the knobs of the fleet runs.
type fleetOptions struct {
	nodes       int
	duration    time.Duration
	rotation    time.Duration
	concurrency int
}

// runFleet starts setup's nodes, drives them and stops them.
func runFleet(ctx context.Context, e *benchEnv, o fleetOptions, setup *fleetSetup, ch *chain, prog *progress) (fleetResult, error) {
	res := fleetResult{Setup: setup, Nodes: o.nodes, Concurrency: o.concurrency, Duration: o.duration.Seconds(), Rotation: o.rotation.Seconds(), Rotations: -1}
	base, err := e.serverDir("fleet-" + setup.ID)
	if err != nil {
		return res, err
	}
	storage := filepath.Join(base, "storage")
	var nodes []*fleetNode
	defer func() {
		for _, n := range nodes {
			n.proc.stop()
		}
	}()
	cfg := ch.verifyingConfig(tls.VersionTLS13)
	if !setup.MTLS {
		cfg.Certificates = nil
	}
	for i := range o.nodes {
		dir := filepath.Join(base, fmt.Sprintf("node%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return res, err
		}
		n, err := setup.start(e, i, dir, storage, ch, o.rotation)
		if err != nil {
			return res, err
		}
		nodes = append(nodes, n)
		// One node at a time: the first creates the shared state (keys in
		// storage) that the others load.
		if err := n.proc.waitTLS(ctx, n.addr, cfg); err != nil {
			return res, err
		}
	}
	rotationsBefore, err := fleetRotations(nodes)
	if err != nil {
		return res, err
	}

	counter := new(atomic.Int64)
	prog.begin(fmt.Sprintf("fleet    %s", setup.Label), o.duration, counter)
	start := time.Now()
	deadline := start.Add(o.duration)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for w := range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wcfg := cfg.Clone()
			wcfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			var conns, resumed, errs int
			var werr error
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				c, err := connectOnce(ctx, nodes[(w+i)%len(nodes)].addr, wcfg)
				switch {
				case err != nil:
					errs++
					if werr == nil {
						werr = err
					}
				case i > 0: // the first connection has no session to offer
					conns++
					if c.resumed {
						resumed++
					}
					counter.Add(1)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.Connections += conns
			res.Resumed += resumed
			res.Errors += errs
			if firstErr == nil {
				firstErr = werr
			}
		}()
	}
	wg.Wait()
	prog.end()
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Connections == 0 {
		return res, fmt.Errorf("fleet %s: no connection succeeded: %v", setup.ID, firstErr)
	}
	rotationsAfter, err := fleetRotations(nodes)
	if err != nil {
		return res, err
	}
	if rotationsBefore >= 0 && rotationsAfter >= 0 {
		res.Rotations = rotationsAfter - rotationsBefore
	}
	for _, n := range nodes {
		if err := n.proc.exited(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// fleetRotations is the fewest ring rotations any node has counted, or -1
// if the nodes do not count them.
func fleetRotations(nodes []*fleetNode) (int, error) {
	fewest := -1
	for _, n := range nodes {
		if n.adminAddr == "" {
			return -1, nil
		}
		v, err := scrapeCounter("http://"+n.adminAddr+"/metrics", "caddy_tls_resume_ring_rotations_total")
		if err != nil {
			return -1, err
		}
		if fewest < 0 || v < fewest {
			fewest = v
		}
	}
	return fewest, nil
}

// scrapeCounter reads one unlabelled series from a Prometheus text page.
func scrapeCounter(url, series string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s: %w", url, series, err)
			}
			return int(f), nil
		}
	}
	return 0, sc.Err()
}

// stockFleetNode starts stock Caddy with session tickets from keySource
// ("standard": each node's own keys in memory; "distributed": keys shared
// through storage), rotated every rotation. No client authentication:
// stock Caddy turns tickets off for sites that require it.
func stockFleetNode(keySource string) func(e *benchEnv, i int, dir, storage string, ch *chain, rotation time.Duration) (*fleetNode, error) {
	return func(e *benchEnv, i int, dir, storage string, ch *chain, rotation time.Duration) (*fleetNode, error) {
		ports, err := freePorts(3)
		if err != nil {
			return nil, err
		}
		source := map[string]any{"provider": keySource}
		if keySource == "distributed" {
			source["storage"] = map[string]any{"module": "file_system", "root": storage}
		}
		config := map[string]any{
			"admin":   map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", ports[1]), "config": map[string]any{"persist": false}},
			"storage": map[string]any{"module": "file_system", "root": storage},
			"apps": map[string]any{
				"tls": map[string]any{
					"certificates": map[string]any{"load_files": []any{map[string]any{
						"certificate": ch.serverCert, "key": ch.serverKey, "tags": []string{"bench"},
					}}},
					"session_tickets": map[string]any{
						"key_source":        source,
						"rotation_interval": rotation.String(),
					},
				},
				"http": map[string]any{
					"http_port": ports[2],
					"servers": map[string]any{"bench": map[string]any{
						"listen":                  []string{fmt.Sprintf("127.0.0.1:%d", ports[0])},
						"routes":                  []any{map[string]any{"handle": []any{map[string]any{"handler": "static_response", "body": "ok"}}}},
						"tls_connection_policies": []any{map[string]any{"certificate_selection": map[string]any{"any_tag": []string{"bench"}}}},
						"automatic_https":         map[string]any{"disable": true},
					}},
				},
			},
		}
		js, err := json.MarshalIndent(config, "", "\t")
		if err != nil {
			return nil, err
		}
		p, err := launchCaddy(e, fmt.Sprintf("caddy-%s-%d", keySource, i), e.stockBin, dir, string(js), "json", nil)
		if err != nil {
			return nil, err
		}
		return &fleetNode{proc: p, addr: fmt.Sprintf("127.0.0.1:%d", ports[0])}, nil
	}
}

// fleetKEK is the key-encryption key the plugin's fleet nodes share.
var fleetKEK = base64.StdEncoding.EncodeToString(randomBytes(32))

// pluginFleetNode starts Caddy with tls_resume and an mTLS site. The ring
// polls storage twice a second, so a key is published at least
// 2·poll + skew before any node seals with it.
func pluginFleetNode(e *benchEnv, i int, dir, storage string, ch *chain, rotation time.Duration) (*fleetNode, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	globals := fmt.Sprintf("\ttls_resume {\n\t\tkek {env.TLS_RESUME_KEK}\n\t\trotation_interval %s\n\t\tpoll_interval 500ms\n\t\tmax_clock_skew 200ms\n\t}\n", rotation)
	config := caddyGlobals(ports[1], storage, globals) + mtlsSite(ports[0], ch)
	p, err := launchCaddy(e, fmt.Sprintf("plugin-%d", i), e.pluginBin, dir, config, "caddyfile", []string{"TLS_RESUME_KEK=" + fleetKEK})
	if err != nil {
		return nil, err
	}
	return &fleetNode{proc: p, addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), adminAddr: fmt.Sprintf("127.0.0.1:%d", ports[1])}, nil
}
