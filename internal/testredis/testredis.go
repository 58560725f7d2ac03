// Package testredis starts real redis-server processes on free loopback ports
// for tests. Servers run without persistence in a private temporary
// directory and are stopped by the caller (or by t.Cleanup through Must).
//
// Tests that need Redis fail, not skip, when redis-server is missing: `make
// test` installs it, so a missing binary is a broken environment.
package testredis

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Server is one running redis-server.
type Server struct {
	Addr string // host:port on 127.0.0.1
	Port int
	Dir  string // working directory holding its log

	args []string
	// tls, when set, is how Ping reaches a server that speaks only TLS.
	tls  *tls.Config
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the redis-server path or an error that names the package to
// install.
func Binary() (string, error) {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server not found in PATH: install the Debian package redis-server (make test does this when run as root)")
	}
	return p, nil
}

// Start launches redis-server on a free port. Extra arguments are passed on
// the command line (for example "--requirepass", "secret").
func Start(extraArgs ...string) (*Server, error) {
	return startOn(func(port int) []string { return []string{"--port", strconv.Itoa(port)} }, nil, extraArgs)
}

// TLSFiles are the PEM files of a TLS-only server: its certificate chain and
// key, and the CA that client certificates must chain to.
type TLSFiles struct {
	Cert, Key, ClientCA string
}

// StartTLS launches redis-server that listens only for TLS on a free port
// (its plain-TCP port is off) and requires a client certificate from
// files.ClientCA. client is the configuration Ping uses to reach it.
func StartTLS(files TLSFiles, client *tls.Config, extraArgs ...string) (*Server, error) {
	return startOn(func(port int) []string {
		return []string{
			"--port", "0",
			"--tls-port", strconv.Itoa(port),
			"--tls-cert-file", files.Cert,
			"--tls-key-file", files.Key,
			"--tls-ca-cert-file", files.ClientCA,
			"--tls-auth-clients", "yes",
		}
	}, client, extraArgs)
}

// MustTLS is StartTLS for a test, stopped when the test ends.
func MustTLS(t testing.TB, files TLSFiles, client *tls.Config, extraArgs ...string) *Server {
	t.Helper()
	s, err := StartTLS(files, client, extraArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// startOn starts a server on a free port; listen returns the arguments that
// make it listen there.
func startOn(listen func(port int) []string, client *tls.Config, extraArgs []string) (*Server, error) {
	return startOnFreePort("testredis-", "redis-server", client, func(dir string, port int) ([]string, error) {
		args := append(listen(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir,
			"--logfile", filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)))
		return append(args, extraArgs...), nil
	})
}

// startOnFreePort starts a process (what, for errors) in a new temporary
// directory named after prefix, on a free port: args gives its arguments
// for the directory and port. A start that fails (another process may have
// taken the port meanwhile) is retried on another port, five times.
func startOnFreePort(prefix, what string, client *tls.Config, args func(dir string, port int) ([]string, error)) (*Server, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		a, err := args(dir, port)
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir, tls: client, args: a}
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	return nil, fmt.Errorf("testredis: could not start %s: %w", what, lastErr)
}

// Must starts a server for the test and stops it when the test ends.
func Must(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	s, err := Start(extraArgs...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() error {
	bin, err := Binary()
	if err != nil {
		return err
	}
	s.cmd = exec.Command(bin, s.args...)
	s.cmd.Dir = s.Dir
	var stderr bytes.Buffer
	s.cmd.Stderr = &stderr
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited: %s %s", strings.TrimSpace(stderr.String()), s.LogTail())
		default:
		}
		if s.Ping() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("redis-server on %s did not answer PING within 10s: %s", s.Addr, s.LogTail())
}

// Ping sends PING over a fresh connection and expects +PONG (or an
// authentication error, which still proves the server is up).
func (s *Server) Ping() error {
	var c net.Conn
	var err error
	if s.tls != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", s.Addr, s.tls)
	} else {
		c, err = net.DialTimeout("tcp", s.Addr, time.Second)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") {
		return nil
	}
	return fmt.Errorf("unexpected PING reply %q", line)
}

// Stop terminates the server and waits for it to exit. It is idempotent.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused server cannot exit
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Kill is Stop under the name fault tests use for a crashed server.
func (s *Server) Kill() { s.Stop() }

// Pause freezes the server (SIGSTOP): connections stay open but nothing is
// answered, which is how a hung Redis looks to clients.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP) }

// Resume undoes Pause.
func (s *Server) Resume() error { return s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig syscall.Signal) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("testredis: server not running")
	}
	return s.cmd.Process.Signal(sig)
}

// Restart starts the server again on the same port after Stop or Kill.
func (s *Server) Restart() error {
	s.Stop()
	return s.start()
}

// LogTail returns the end of the server's log file, for failure reports.
func (s *Server) LogTail() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, fmt.Sprintf("redis-%d.log", s.Port)))
	if err != nil {
		return ""
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
