package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// Cluster is a set of Caddy processes on loopback ports that share one
// storage directory, as a fleet behind a load balancer shares a storage
// backend.
type Cluster struct {
	Nodes []*Node
	// StorageDir is the storage directory every node uses.
	StorageDir string
	// Bin is the Caddy binary the nodes run.
	Bin string
}

// ClusterOption adjusts NewCluster and StartCluster.
type ClusterOption func(*clusterOptions)

type clusterOptions struct {
	adapter    string
	env        []string
	ports      int
	storageDir string
}

// WithAdapter sets the adapter of the configs the config function returns:
// "caddyfile" (the default) or "json".
func WithAdapter(adapter string) ClusterOption {
	return func(o *clusterOptions) { o.adapter = adapter }
}

// WithEnv adds KEY=VALUE entries to every node's environment (for example
// a KEK read through {env.TLS_RESUME_KEK}).
func WithEnv(kv ...string) ClusterOption {
	return func(o *clusterOptions) { o.env = append(o.env, kv...) }
}

// WithPorts gives every node n site ports in NodeInfo.Ports (default 1).
func WithPorts(n int) ClusterOption {
	return func(o *clusterOptions) { o.ports = n }
}

// WithStorageDir makes the nodes share dir instead of a fresh temporary
// directory (for example to start a second cluster over the first one's
// storage).
func WithStorageDir(dir string) ClusterOption {
	return func(o *clusterOptions) { o.storageDir = dir }
}

// NewCluster builds the Caddy binary (once per test process), prepares n
// nodes and writes each node's config, but starts none of them. configFor
// returns a node's config; the harness completes it before writing it:
//
//   - Caddyfile: the global options of NodeInfo.Globals (admin address,
//     `storage file_system <StorageDir>`, `persist_config off`, http_port,
//     https_port, `skip_install_trust`) are added where the Caddyfile does
//     not set them;
//   - JSON: admin.listen, admin.config.persist=false, storage and the http
//     app's http_port/https_port are set where missing.
//
// A config that sets a different admin address fails the test. Nodes are
// stopped, and their logs' tails printed on failure, when the test ends.
func NewCluster(t testing.TB, n int, configFor func(NodeInfo) string, opts ...ClusterOption) *Cluster {
	t.Helper()
	o := clusterOptions{adapter: "caddyfile", ports: 1}
	for _, opt := range opts {
		opt(&o)
	}
	if n < 1 {
		t.Fatalf("harness: a cluster needs at least one node, not %d", n)
	}
	bin := BuildCaddy(t)
	base := t.TempDir()
	if o.storageDir == "" {
		o.storageDir = filepath.Join(base, "storage")
	}
	if err := os.MkdirAll(o.storageDir, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{StorageDir: o.storageDir, Bin: bin}
	for i := 0; i < n; i++ {
		info := NodeInfo{
			Index:      i,
			Name:       fmt.Sprintf("node%d", i),
			AdminAddr:  Addr(FreePort(t)),
			HTTPPort:   FreePort(t),
			HTTPSPort:  FreePort(t),
			Ports:      FreePorts(t, o.ports),
			StorageDir: o.storageDir,
		}
		info.Dir = filepath.Join(base, info.Name)
		if err := os.MkdirAll(info.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		ext := "Caddyfile"
		if o.adapter == "json" {
			ext = "caddy.json"
		}
		node := &Node{
			NodeInfo:   info,
			ConfigFile: filepath.Join(info.Dir, ext),
			Adapter:    o.adapter,
			LogFile:    filepath.Join(info.Dir, info.Name+".log"),
			t:          t,
			bin:        bin,
			env:        o.env,
		}
		node.args = []string{"run", "--config", node.ConfigFile, "--adapter", o.adapter}
		if err := node.SetConfig(configFor(info)); err != nil {
			t.Fatal(err)
		}
		node.registerCleanup()
		c.Nodes = append(c.Nodes, node)
	}
	return c
}

// StartCluster is NewCluster followed by StartAll; it fails the test if any
// node does not come up.
func StartCluster(t testing.TB, n int, configFor func(NodeInfo) string, opts ...ClusterOption) *Cluster {
	t.Helper()
	c := NewCluster(t, n, configFor, opts...)
	if err := c.StartAll(); err != nil {
		t.Fatal(err)
	}
	return c
}

// StartAll starts every stopped node and waits until all are ready. It
// returns the errors of the nodes that failed.
//
// The first stopped node starts alone, the others then concurrently: on a
// fresh shared storage, Caddy processes that start at the same instant race
// to create Caddy's own local CA (the pki app) and the loser fails with
// "loading intermediate key: no such file". Once one node has created it,
// the rest load it.
func (c *Cluster) StartAll() error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	first := true
	for i, n := range c.Nodes {
		if n.Running() {
			continue
		}
		if first {
			first = false
			if errs[i] = n.Start(); errs[i] != nil {
				return errs[i]
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.Start()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// StopAll stops every node gracefully.
func (c *Cluster) StopAll() error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.Nodes))
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = n.Stop()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Node returns node i.
func (c *Cluster) Node(i int) *Node { return c.Nodes[i] }
