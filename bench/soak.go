package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
	"github.com/tlsresume/caddy-tlsresume/internal/testredis"
)

// The soak: three Caddy nodes with the plugin on one shared file storage
// and the Redis session store, and a fourth on the same storage without a
// store (stateless tickets), under a steady mix of TLS 1.2, TLS 1.3 and
// HTTP/3 clients while a chaos schedule rotates keys, reloads configs,
// kills, restarts and freezes Redis, corrupts the ring document and
// revokes client certificates. See README.md, "make soak".

// soakOptions are the soak's knobs.
type soakOptions struct {
	duration  time.Duration
	clients   int
	revoked   int
	stateless int // clients of the stateless node, out of clients
	rotation  time.Duration
	reload    time.Duration
	poll      time.Duration
	skew      time.Duration
	think     time.Duration
	sample    time.Duration
	out       string // RELIABILITY.md ("" = none)
	chart     string
	results   string // directory for raw samples
	command   string
	keep      bool
	quiet     bool
	pluginBin string // prebuilt Caddy with the plugin ("" = build)
	// heapAt are the times into the run at which every node's heap
	// profile is saved in the results directory.
	heapAt []time.Duration
	// idleTimeout is Caddy's servers idle_timeout ("" = Caddy's default,
	// 5 minutes), which is also how long quic-go's HTTP/3 server keeps a
	// closed connection reachable (RELIABILITY.md, "Memory").
	idleTimeout string
}

func parseSoakOptions(args []string, stderr io.Writer) (soakOptions, error) {
	var o soakOptions
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "length of the run")
	fs.IntVar(&o.clients, "clients", 32, "concurrent clients")
	fs.IntVar(&o.revoked, "revoked", 100, "client certificates revoked mid-run (their clients keep trying)")
	fs.IntVar(&o.stateless, "stateless-clients", 4, "clients of the stateless node (the others spread over the store nodes)")
	fs.DurationVar(&o.rotation, "rotation", 30*time.Second, "scheduled ticket-key rotation interval")
	fs.DurationVar(&o.reload, "reload", 20*time.Second, "interval between config reloads of one node")
	fs.DurationVar(&o.poll, "poll", 2*time.Second, "the ring's poll_interval")
	fs.DurationVar(&o.skew, "skew", time.Second, "the ring's max_clock_skew")
	fs.DurationVar(&o.think, "think", 20*time.Millisecond, "each client's pause between connections")
	fs.DurationVar(&o.sample, "sample", 5*time.Second, "interval between resource samples of the nodes")
	fs.StringVar(&o.out, "out", filepath.Join(moduleDir(), "..", "RELIABILITY.md"), `report to write ("" for none)`)
	fs.StringVar(&o.chart, "chart", filepath.Join(moduleDir(), "..", "docs", "reliability-timeline.svg"), "timeline chart to write")
	fs.StringVar(&o.results, "results", "", "directory for the raw samples (default: soak-results/<time> in the bench directory)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configs, logs)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines")
	fs.StringVar(&o.pluginBin, "caddy", "", "a Caddy binary with the plugin to use (default: build one)")
	heap := fs.String("heap-profiles", "", "times into the run (e.g. 2m,8m) at which to save every node's heap profile in the results directory")
	fs.StringVar(&o.idleTimeout, "idle-timeout", "", "Caddy's idle_timeout for the nodes' servers (default: Caddy's, 5m)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *heap != "" {
		for _, f := range strings.Split(*heap, ",") {
			at, err := time.ParseDuration(strings.TrimSpace(f))
			if err != nil || at <= 0 || at >= o.duration {
				return o, fmt.Errorf("-heap-profiles: %q is not a duration within the run (%s)", f, o.duration)
			}
			o.heapAt = append(o.heapAt, at)
		}
	}
	if o.idleTimeout != "" {
		if d, err := time.ParseDuration(o.idleTimeout); err != nil || d <= 0 {
			return o, fmt.Errorf("-idle-timeout: %q is not a positive duration", o.idleTimeout)
		}
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.duration < 30*time.Second:
		return o, fmt.Errorf("-duration: at least 30s, got %s", o.duration)
	case o.clients < 8:
		return o, fmt.Errorf("-clients: at least 8, got %d", o.clients)
	case o.stateless < 1 || o.stateless >= o.clients:
		return o, fmt.Errorf("-stateless-clients: between 1 and %d, got %d", o.clients-1, o.stateless)
	case o.revoked < 1:
		return o, fmt.Errorf("-revoked: at least 1, got %d", o.revoked)
	case 2*o.poll+o.skew >= o.rotation:
		return o, fmt.Errorf("-rotation %s: must exceed 2×poll + skew = %s", o.rotation, 2*o.poll+o.skew)
	case o.reload <= 0 || o.think < 0 || o.sample <= 0:
		return o, errors.New("-reload and -sample must be positive, -think not negative")
	}
	o.command = "make soak"
	if len(args) > 0 {
		o.command += " SOAK_ARGS='" + strings.Join(args, " ") + "'"
	}
	return o, nil
}

// soakNode is one Caddy of the soak.
type soakNode struct {
	name      string
	proc      *process
	port      int
	adminPort int
	addr      string // 127.0.0.1:port, TCP and UDP
	config    string // Caddyfile
	store     bool   // has the Redis session store
}

func (n *soakNode) adminURL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", n.adminPort, path)
}

// identity is one client certificate and its session cache.
type identity struct {
	id       int
	cert     tls.Certificate
	sha256   string
	doomed   bool // revoked mid-run
	cache    tls.ClientSessionCache
	revoking time.Time // when the revocation was requested (zero before)
	revoked  time.Time // when the revocation answered (zero before)
	mu       sync.Mutex
	// first is whether no connection has completed yet (the first
	// cannot resume).
	first bool
}

func (id *identity) revokedAt() time.Time {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.revoked
}

// soakEnv is a running soak's fixture.
type soakEnv struct {
	o       soakOptions
	work    string
	storage string
	ringDoc string
	kek     string
	set     *pki.Set
	caFile  string
	nodes   []*soakNode
	redis   *testredis.Server
	roots   *tls.Config // client template
	ids     []*identity
}

// soakSite is each node's Caddyfile.
func soakSite(n *soakNode, storage, redisAddr, serverCert, serverKey, ca string, o soakOptions) string {
	idle := ""
	if o.idleTimeout != "" {
		idle = "\t\ttimeouts {\n\t\t\tidle " + o.idleTimeout + "\n\t\t}\n"
	}
	store := ""
	if n.store {
		store = fmt.Sprintf("\t\tsession_store redis {\n\t\t\taddress %s\n\t\t}\n", redisAddr)
	}
	globals := fmt.Sprintf(`	metrics
	servers {
		protocols h1 h2 h3
%s	}
	tls_resume {
		kek {env.TLS_RESUME_KEK}
		rotation_interval %s
		poll_interval %s
		max_clock_skew %s
%s	}
`, idle, o.rotation, o.poll, o.skew, store)
	route := fmt.Sprintf("\troute {\n\t\tearly_data_guard\n\t\trespond \"{method} early={http.vars.early_data} node=%s\"\n\t}\n", n.name)
	return caddyGlobals(n.adminPort, storage, globals) + mtlsSiteWith(n.port, serverCert, serverKey, ca, route)
}

// startSoak builds (or takes) the plugin's Caddy, makes the PKI and the
// client identities, starts Redis and the four nodes.
func startSoak(ctx context.Context, o soakOptions, stderr io.Writer) (*soakEnv, error) {
	work, err := os.MkdirTemp("", "tlsresume-soak-")
	if err != nil {
		return nil, err
	}
	if o.pluginBin == "" {
		fmt.Fprintln(stderr, "soak: building Caddy with the plugin…")
		if _, o.pluginBin, err = buildCaddys(filepath.Join(work, "bin")); err != nil {
			return &soakEnv{o: o, work: work}, err
		}
	}
	return startSoakNodes(ctx, o, work, 4)
}

// startSoakNodes makes the PKI and identities in work, starts Redis and n
// nodes: the first three with the Redis session store, a fourth without.
func startSoakNodes(ctx context.Context, o soakOptions, work string, n int) (*soakEnv, error) {
	e := &soakEnv{o: o, work: work, storage: filepath.Join(work, "storage")}
	e.ringDoc = filepath.Join(e.storage, "tls_resume", "default", "ring.json")
	var err error
	if e.set, err = pki.NewSet(pki.ECDSAP256); err != nil {
		return e, err
	}
	files, err := e.set.WriteFiles(filepath.Join(work, "pki"))
	if err != nil {
		return e, err
	}
	e.caFile = files.CA
	e.roots = &tls.Config{ServerName: "localhost", RootCAs: e.set.Root.Pool()}
	// Identities: one per client that is never revoked, plus o.revoked
	// that are, spread over the clients.
	for i := range o.clients + o.revoked {
		leaf, err := e.set.Intermediate.IssueClient(pki.Options{CommonName: fmt.Sprintf("soak-client-%d", i),
			URIs: []string{fmt.Sprintf("spiffe://soak.example.org/client/%d", i)}})
		if err != nil {
			return e, err
		}
		sum := sha256.Sum256(leaf.Cert.Raw)
		e.ids = append(e.ids, &identity{id: i, cert: leaf.TLSCertificate(), sha256: hex.EncodeToString(sum[:]),
			doomed: i >= o.clients, cache: tls.NewLRUClientSessionCache(4), first: true})
	}
	if e.redis, err = testredis.Start(); err != nil {
		return e, fmt.Errorf("redis: %w", err)
	}
	e.kek = base64.StdEncoding.EncodeToString(randomBytes(32))
	ports, err := freePorts(2 * n)
	if err != nil {
		return e, err
	}
	env := &benchEnv{dir: work}
	for i := range n {
		node := &soakNode{name: fmt.Sprintf("node%d", i), port: ports[2*i], adminPort: ports[2*i+1], store: i < 3}
		if !node.store {
			node.name = "stateless"
		}
		node.addr = fmt.Sprintf("127.0.0.1:%d", node.port)
		node.config = soakSite(node, e.storage, e.redis.Addr, files.ServerCert, files.ServerKey, files.CA, o)
		dir := filepath.Join(work, node.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return e, err
		}
		if node.proc, err = launchCaddy(env, node.name, o.pluginBin, dir, node.config, "caddyfile", []string{"TLS_RESUME_KEK=" + e.kek}); err != nil {
			return e, err
		}
		e.nodes = append(e.nodes, node)
		cfg := e.clientConfig(e.ids[0], tls.VersionTLS13)
		cfg.ClientSessionCache = nil
		if err := node.proc.waitTLS(ctx, node.addr, cfg); err != nil {
			return e, err
		}
	}
	return e, nil
}

// clientConfig is identity id's TLS configuration (its own session cache).
func (e *soakEnv) clientConfig(id *identity, version uint16) *tls.Config {
	cfg := e.roots.Clone()
	cfg.Certificates = []tls.Certificate{id.cert}
	cfg.ClientSessionCache = id.cache
	cfg.MinVersion, cfg.MaxVersion = version, version
	if version == tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

func (e *soakEnv) stop() {
	if e == nil {
		return
	}
	for _, n := range e.nodes {
		n.proc.stop()
	}
	if e.redis != nil {
		e.redis.Stop()
	}
	if !e.o.keep && e.work != "" {
		os.RemoveAll(e.work)
	}
}

// adminPost posts body to a node's admin API and returns the answer.
func adminPost(ctx context.Context, url, contentType string, body []byte, header map[string]string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return b, &adminStatusError{fmt.Sprintf("POST %s: %s: %s", url, resp.Status, strings.TrimSpace(string(b)))}
	}
	return b, nil
}

// adminStatusError is an answer from the admin API that is not 2xx (as
// opposed to a transport failure).
type adminStatusError struct{ msg string }

func (e *adminStatusError) Error() string { return e.msg }

// reload makes node n load its config again, as `caddy reload` does
// (must-revalidate: Caddy skips an unchanged config otherwise).
func (e *soakEnv) reload(ctx context.Context, n *soakNode) error {
	_, err := adminPost(ctx, n.adminURL("/load"), "text/caddyfile", []byte(n.config), map[string]string{"Cache-Control": "must-revalidate"})
	return err
}

func (e *soakEnv) rotate(ctx context.Context, emergency bool) error {
	body, _ := json.Marshal(map[string]bool{"emergency": emergency})
	_, err := adminPost(ctx, e.nodes[0].adminURL("/tls_resume/rotate"), "application/json", body, nil)
	return err
}

func (e *soakEnv) revoke(ctx context.Context, id *identity) error {
	body, _ := json.Marshal(map[string]string{"sha256": id.sha256, "reason": "soak"})
	// Spread over the store nodes: every node can write the ring.
	n := e.nodes[id.id%3]
	id.mu.Lock()
	id.revoking = time.Now()
	id.mu.Unlock()
	// Revoking is idempotent, so a connection the node dropped while a
	// reload replaced its admin endpoint is simply tried again.
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		var status *adminStatusError
		if _, err = adminPost(ctx, n.adminURL("/tls_resume/revoke"), "application/json", body, nil); err == nil || errors.As(err, &status) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return err
	}
	id.mu.Lock()
	id.revoked = time.Now()
	id.mu.Unlock()
	return nil
}
