package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddytest"

	// Every module of the plugin, in the in-process Caddy of every test
	// package that uses the harness.
	_ "github.com/tlsresume/caddy-tlsresume"
)

// Tester is a caddytest.Tester bound to this test process's in-process Caddy.
// Every caddytest method is available on it. Its InitServer first completes
// the config with this process's admin address (and other settings listed
// on InitServer), so tests never collide with another test package running
// in parallel.
//
// The in-process Caddy is one per test process: tests that use a Tester
// replace each other's config and must not call t.Parallel.
type Tester struct {
	*caddytest.Tester

	// AdminPort is the in-process Caddy's admin port; AdminAddr is
	// "localhost:AdminPort", the address caddytest talks to.
	AdminPort int
	AdminAddr string
	// HTTPPort and HTTPSPort are added as the http_port and https_port
	// global options unless the config sets them, so automatic HTTPS never
	// tries to bind 80 or 443.
	HTTPPort, HTTPSPort int

	t testing.TB
}

var (
	inproc     inProcess
	inprocOnce sync.Once
)

// inProcess is the single in-process Caddy of this test process.
type inProcess struct {
	adminPort, httpPort, httpsPort int
	dataDir                        string
	err                            error
}

// NewTester returns a Tester whose admin port is a free port chosen once per
// test process. The first call starts the in-process Caddy itself (with its
// data and config directories under this process's private directory, see
// ProcessDir) and fails the test if it does not come up: caddytest would
// otherwise skip the test.
func NewTester(t testing.TB) *Tester {
	t.Helper()
	inprocOnce.Do(func() { inproc = startInProcess() })
	if inproc.err != nil {
		t.Fatalf("harness: starting the in-process Caddy: %v", inproc.err)
	}
	ct := caddytest.NewTester(t).WithDefaultOverrides(caddytest.Config{
		AdminPort:          inproc.adminPort,
		LoadRequestTimeout: 30 * time.Second,
		TestRequestTimeout: 15 * time.Second,
	})
	return &Tester{
		Tester:    ct,
		AdminPort: inproc.adminPort,
		AdminAddr: "localhost:" + strconv.Itoa(inproc.adminPort),
		HTTPPort:  inproc.httpPort,
		HTTPSPort: inproc.httpsPort,
		t:         t,
	}
}

// AdminURL returns the URL of path on the in-process Caddy's admin endpoint,
// e.g. AdminURL("/tls_resume/status").
func (tc *Tester) AdminURL(path string) string {
	return "http://" + tc.AdminAddr + path
}

// caddytestMangled matches what caddytest rewrites in every config it loads:
// it prefixes "/NAME.key" and "/NAME.crt" with its own source directory (for
// its bundled test certificates), which breaks any real path ending in .key
// or .crt.
var caddytestMangled = regexp.MustCompile(`/[\w\d\.]+\.(key|crt)`)

// InitServer loads config (adapter "caddyfile" or "json") into the
// in-process Caddy through caddytest, after completing it:
//
//   - Caddyfile: global options `admin localhost:PORT`, `persist_config off`,
//     `http_port`, `https_port` and `skip_install_trust` are added unless set;
//   - JSON: admin.listen, admin.config.persist=false and, when the http app
//     is configured, its http_port and https_port are set unless present.
//
// It fails the test when the config names a different admin address (the
// harness would lose its Caddy) or contains a path caddytest would rewrite
// (anything ending in /NAME.key or /NAME.crt: write keys with WritePKI, which
// uses caddytest-safe names).
func (tc *Tester) InitServer(config, adapter string) {
	tc.t.Helper()
	full, err := tc.Complete(config, adapter)
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.Tester.InitServer(full, adapter)
	if tc.t.Failed() {
		tc.t.FailNow()
	}
	// A reload leaves the old servers' sockets open for a moment; see
	// waitReloadSettled.
	waitReloadSettled(os.Getpid(), 5*time.Second)
}

// Complete returns config as InitServer would load it.
func (tc *Tester) Complete(config, adapter string) (string, error) {
	if m := caddytestMangled.FindString(config); m != "" {
		return "", fmt.Errorf("harness: config path %q would be rewritten by caddytest (it treats /NAME.key and /NAME.crt as its own test files); write files with WritePKI or use another extension", m)
	}
	switch adapter {
	case "json":
		out, listen, err := setJSONDefaults(config, jsonDefaults{
			adminListen: tc.AdminAddr,
			noPersist:   true,
			httpPort:    tc.HTTPPort,
			httpsPort:   tc.HTTPSPort,
		})
		if err != nil {
			return "", err
		}
		if listen != tc.AdminAddr {
			return "", fmt.Errorf("harness: config sets admin.listen %q; leave it unset (the harness uses %s)", listen, tc.AdminAddr)
		}
		return out, nil
	case "caddyfile":
		opts, err := GlobalOptions(config)
		if err != nil {
			return "", err
		}
		if a, ok := opts["admin"]; ok && (len(a) != 1 || a[0] != tc.AdminAddr) {
			return "", fmt.Errorf("harness: Caddyfile sets admin %v; leave it out (the harness uses %s)", a, tc.AdminAddr)
		}
		return AddGlobalOptions(config,
			"admin "+tc.AdminAddr,
			"persist_config off",
			"http_port "+strconv.Itoa(tc.HTTPPort),
			"https_port "+strconv.Itoa(tc.HTTPSPort),
			"skip_install_trust",
		)
	default:
		return "", fmt.Errorf("harness: unsupported adapter %q (want caddyfile or json)", adapter)
	}
}

// startInProcess starts Caddy in this process with only an admin endpoint,
// the way caddytest would, but with private data/config directories and an
// error instead of a skip when it fails.
func startInProcess() inProcess {
	var ip inProcess
	dir, err := ProcessDir()
	if err != nil {
		ip.err = err
		return ip
	}
	ip.dataDir = filepath.Join(dir, "inprocess")
	for _, sub := range []string{"data", "config"} {
		if err := os.MkdirAll(filepath.Join(ip.dataDir, sub), 0o700); err != nil {
			ip.err = err
			return ip
		}
	}
	// Caddy reads these whenever it needs its data/config directory; its
	// default storage was fixed at package init, so point it here too.
	os.Setenv("XDG_DATA_HOME", filepath.Join(ip.dataDir, "data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(ip.dataDir, "config"))
	caddy.DefaultStorage.Path = caddy.AppDataDir()

	for _, p := range []*int{&ip.adminPort, &ip.httpPort, &ip.httpsPort} {
		if *p, err = freePort(); err != nil {
			ip.err = err
			return ip
		}
	}
	initial, _ := json.Marshal(map[string]any{
		"admin": map[string]any{
			"listen": "localhost:" + strconv.Itoa(ip.adminPort),
			"config": map[string]any{"persist": false},
		},
	})
	if err := caddy.Load(initial, true); err != nil {
		ip.err = err
		return ip
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://localhost:" + strconv.Itoa(ip.adminPort) + "/config/")
		if err == nil {
			resp.Body.Close()
			return ip
		}
		if time.Now().After(deadline) {
			ip.err = fmt.Errorf("admin endpoint localhost:%d not answering: %w", ip.adminPort, err)
			return ip
		}
		time.Sleep(50 * time.Millisecond)
	}
}
