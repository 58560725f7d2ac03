package harness

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyLine is what `caddy run` logs once its initial config is running.
const readyLine = "serving initial configuration"

// NodeInfo describes one Caddy process: where it keeps its files and which
// loopback ports it owns. A cluster's config function receives it.
type NodeInfo struct {
	// Index is the node's position in its cluster (0 for a lone process).
	Index int
	// Name is "node0", "node1", ... (or the ProcessSpec's name).
	Name string
	// Dir is the node's private directory: config file, log, and the data
	// and config directories Caddy uses for itself (XDG_DATA_HOME,
	// XDG_CONFIG_HOME point into it).
	Dir string
	// AdminAddr is the node's admin endpoint, "127.0.0.1:PORT".
	AdminAddr string
	// HTTPPort and HTTPSPort become the node's http_port and https_port.
	HTTPPort, HTTPSPort int
	// Ports are free loopback ports (TCP and UDP) for the node's sites.
	Ports []int
	// StorageDir is the storage directory every node of a cluster shares.
	StorageDir string
}

// Port returns the node's first site port.
func (n NodeInfo) Port() int { return n.Ports[0] }

// Addr returns "127.0.0.1:PORT" for the node's first site port.
func (n NodeInfo) Addr() string { return Addr(n.Ports[0]) }

// Globals returns the Caddyfile global option lines the harness adds to a
// node's Caddyfile when they are missing (admin address, shared storage,
// ports, no config persistence, no trust-store installs), one per line, for
// tests that prefer to write them out.
func (n NodeInfo) Globals() string {
	return strings.Join(n.globalLines(), "\n")
}

func (n NodeInfo) globalLines() []string {
	lines := []string{"admin " + n.AdminAddr}
	if n.StorageDir != "" {
		lines = append(lines, "storage file_system "+strconv.Quote(n.StorageDir))
	}
	return append(lines,
		"persist_config off",
		"http_port "+strconv.Itoa(n.HTTPPort),
		"https_port "+strconv.Itoa(n.HTTPSPort),
		"skip_install_trust",
	)
}

// Node is one Caddy OS process run from a binary built by BuildCaddy. It can
// be stopped, killed and started again any number of times; its stdout and
// stderr from every run are appended to LogFile, and its log tail is written
// to the test log if the test fails.
type Node struct {
	NodeInfo
	// ConfigFile is the node's config (empty for processes not started from
	// a config file).
	ConfigFile string
	// Adapter is the config adapter of ConfigFile: "caddyfile" or "json".
	Adapter string
	// LogFile receives the process's stdout and stderr.
	LogFile string
	// StartTimeout bounds Start's wait for readiness (default 60s).
	StartTimeout time.Duration

	t    testing.TB
	bin  string
	args []string
	env  []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
	runs    int
}

// ProcessSpec describes a Caddy process started with arbitrary arguments,
// for example `caddy tls-resume demo ...`.
type ProcessSpec struct {
	// Name labels the process in logs (default "caddy").
	Name string
	// Args follow the binary name on the command line.
	Args []string
	// AdminAddr is the admin endpoint the process will listen on; Start
	// waits for it to answer.
	AdminAddr string
	// Env adds KEY=VALUE entries to the process environment.
	Env []string
	// Dir is the process's private directory (default: a new t.TempDir()).
	Dir string
}

// NewProcess prepares (but does not start) a Caddy process running bin with
// spec.Args. It is stopped when the test ends.
func NewProcess(t testing.TB, bin string, spec ProcessSpec) *Node {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "caddy"
	}
	if spec.Dir == "" {
		spec.Dir = t.TempDir()
	}
	n := &Node{
		NodeInfo: NodeInfo{Name: spec.Name, Dir: spec.Dir, AdminAddr: spec.AdminAddr},
		LogFile:  filepath.Join(spec.Dir, spec.Name+".log"),
		t:        t,
		bin:      bin,
		args:     spec.Args,
		env:      spec.Env,
	}
	n.registerCleanup()
	return n
}

func (n *Node) registerCleanup() {
	n.t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			n.t.Logf("harness: stopping %s: %v", n.Name, err)
		}
		if n.t.Failed() {
			n.t.Logf("harness: last lines of %s's log (%s):\n%s", n.Name, n.LogFile, n.LogTail(60))
		}
	})
}

// Start starts the process and waits until it is ready: its admin endpoint
// answers and it has logged that its initial config is running. If it exits
// or does not become ready within StartTimeout, Start returns an error
// that includes the end of its log.
func (n *Node) Start() error {
	n.mu.Lock()
	if n.cmd != nil {
		n.mu.Unlock()
		return fmt.Errorf("harness: %s is already running (pid %d)", n.Name, n.cmd.Process.Pid)
	}
	logf, err := os.OpenFile(n.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.mu.Unlock()
		return err
	}
	defer logf.Close()
	info, err := logf.Stat()
	if err != nil {
		n.mu.Unlock()
		return err
	}
	offset := info.Size()
	n.runs++
	fmt.Fprintf(logf, "=== harness: run %d of %s: %s %s\n", n.runs, n.Name, filepath.Base(n.bin), strings.Join(n.args, " "))

	cmd := exec.Command(n.bin, n.args...)
	cmd.Dir = n.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = procAttr()
	cmd.Env = append(os.Environ(),
		"XDG_DATA_HOME="+filepath.Join(n.Dir, "xdg-data"),
		"XDG_CONFIG_HOME="+filepath.Join(n.Dir, "xdg-config"),
	)
	cmd.Env = append(cmd.Env, n.env...)
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		return fmt.Errorf("harness: starting %s: %w", n.Name, err)
	}
	exited := make(chan struct{})
	n.cmd, n.exited, n.exitErr = cmd, exited, nil
	go func() {
		err := cmd.Wait()
		n.mu.Lock()
		n.exitErr = err
		if n.cmd == cmd {
			n.cmd = nil
		}
		n.mu.Unlock()
		close(exited)
	}()
	n.mu.Unlock()
	return n.waitReady(offset, exited)
}

func (n *Node) waitReady(offset int64, exited chan struct{}) error {
	timeout := n.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-exited:
			n.mu.Lock()
			err := n.exitErr
			n.mu.Unlock()
			return fmt.Errorf("harness: %s exited during startup (%v); log:\n%s", n.Name, err, n.LogTail(40))
		default:
		}
		if n.logContainsSince(offset, readyLine) && n.adminAnswers(client) {
			return nil
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("harness: %s not ready after %s (admin %s); log:\n%s", n.Name, timeout, n.AdminAddr, n.LogTail(40))
			_ = n.Kill()
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *Node) adminAnswers(client *http.Client) bool {
	if n.AdminAddr == "" {
		return true
	}
	resp, err := client.Get("http://" + n.AdminAddr + "/config/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (n *Node) logContainsSince(offset int64, s string) bool {
	b, err := os.ReadFile(n.LogFile)
	if err != nil || int64(len(b)) < offset {
		return false
	}
	return bytes.Contains(b[offset:], []byte(s))
}

// Running reports whether the process is running.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil
}

// PID returns the process id, or 0 when not running.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Stop asks the process to shut down gracefully (SIGTERM) and kills it if
// it has not exited after 10 seconds. Stopping a stopped node is a no-op.
func (n *Node) Stop() error {
	return n.stop(syscall.SIGTERM, 10*time.Second)
}

// Kill ends the process at once (SIGKILL), as a crash would.
func (n *Node) Kill() error {
	return n.stop(syscall.SIGKILL, 0)
}

func (n *Node) stop(sig syscall.Signal, grace time.Duration) error {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGCONT) // a paused process cannot exit
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	if grace > 0 {
		select {
		case <-exited:
			return nil
		case <-time.After(grace):
			n.t.Logf("harness: %s ignored %v for %s; killing it", n.Name, sig, grace)
			_ = cmd.Process.Kill()
		}
	}
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("harness: %s (pid %d) did not exit after SIGKILL", n.Name, cmd.Process.Pid)
	}
}

// Restart stops the process gracefully and starts it again with the same
// arguments, config file and ports.
func (n *Node) Restart() error {
	if err := n.Stop(); err != nil {
		return err
	}
	return n.Start()
}

// Signal sends sig to the running process (e.g. SIGSTOP to freeze it).
func (n *Node) Signal(sig os.Signal) error {
	n.mu.Lock()
	cmd := n.cmd
	n.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("harness: %s is not running", n.Name)
	}
	return cmd.Process.Signal(sig)
}

// WaitExit waits up to timeout for the process to exit on its own and
// returns its exit error (nil for status 0).
func (n *Node) WaitExit(timeout time.Duration) error {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited == nil {
		return fmt.Errorf("harness: %s was never started", n.Name)
	}
	select {
	case <-exited:
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.exitErr
	case <-time.After(timeout):
		return fmt.Errorf("harness: %s still running after %s", n.Name, timeout)
	}
}

// SetConfig completes config as the cluster does (admin address, shared
// storage, ports; see StartCluster) and writes it to ConfigFile. It takes
// effect at the next Start or Reload.
func (n *Node) SetConfig(config string) error {
	if n.ConfigFile == "" {
		return fmt.Errorf("harness: %s was not started from a config file", n.Name)
	}
	full, err := n.complete(config)
	if err != nil {
		return err
	}
	return os.WriteFile(n.ConfigFile, []byte(full), 0o644)
}

// Reload posts ConfigFile to the running node's admin /load endpoint (as
// `caddy reload` does) and returns an error unless Caddy accepts it.
func (n *Node) Reload() error {
	body, err := os.ReadFile(n.ConfigFile)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+n.AdminAddr+"/load", bytes.NewReader(body))
	if err != nil {
		return err
	}
	if n.Adapter == "json" {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", "text/"+n.Adapter)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("harness: reloading %s: %w", n.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return fmt.Errorf("harness: reloading %s: %s: %s", n.Name, resp.Status, strings.TrimSpace(b.String()))
	}
	waitReloadSettled(n.PID(), 5*time.Second)
	return nil
}

func (n *Node) complete(config string) (string, error) {
	switch n.Adapter {
	case "json":
		out, listen, err := setJSONDefaults(config, jsonDefaults{
			adminListen: n.AdminAddr,
			noPersist:   true,
			storageRoot: n.StorageDir,
			httpPort:    n.HTTPPort,
			httpsPort:   n.HTTPSPort,
		})
		if err != nil {
			return "", err
		}
		if listen != n.AdminAddr {
			return "", fmt.Errorf("harness: %s's config sets admin.listen %q; leave it unset or use NodeInfo.AdminAddr (%s)", n.Name, listen, n.AdminAddr)
		}
		return out, nil
	case "caddyfile":
		opts, err := GlobalOptions(config)
		if err != nil {
			return "", fmt.Errorf("harness: %s's config: %w", n.Name, err)
		}
		if a, ok := opts["admin"]; ok && (len(a) == 0 || a[0] != n.AdminAddr) {
			return "", fmt.Errorf("harness: %s's Caddyfile sets admin %v; leave it out or use NodeInfo.AdminAddr (%s)", n.Name, a, n.AdminAddr)
		}
		return AddGlobalOptions(config, n.globalLines()...)
	default:
		return "", fmt.Errorf("harness: unsupported adapter %q (want caddyfile or json)", n.Adapter)
	}
}

// AdminURL returns the URL of path on the node's admin endpoint.
func (n *Node) AdminURL(path string) string {
	return "http://" + n.AdminAddr + path
}

// Log returns everything the process has written so far, over all runs.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogFile)
	return string(b)
}

// LogTail returns the last lines of the log.
func (n *Node) LogTail(lines int) string {
	s := strings.TrimRight(n.Log(), "\n")
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
