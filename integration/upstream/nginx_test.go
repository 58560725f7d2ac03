package upstream

import (
	"bytes"
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

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

// nginxBinary returns Debian's nginx, or fails the test: `make test`
// installs it, so a missing binary is a broken environment.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NGINX"); p != "" {
		return p
	}
	for _, p := range []string{"/usr/sbin/nginx", "nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("nginx not found: install the Debian package nginx (make deps does this)")
	return ""
}

const nginxConf = `worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d ssl;
		ssl_certificate %[3]s;
		ssl_certificate_key %[4]s;
		ssl_client_certificate %[5]s;
		ssl_verify_client on;
		ssl_verify_depth 3;
		ssl_protocols %[6]s;
		ssl_session_cache shared:SSL:1m;
		ssl_session_tickets on;
		ssl_session_timeout 30m;
		location / {
			add_header X-Backend nginx always;
			return 200 "backend=nginx reused=$ssl_session_reused verify=$ssl_client_verify\n";
		}
	}
}
`

// startNginx runs nginx in the foreground with its own config and prefix
// in a temporary directory, serving mTLS on a free loopback port.
func startNginx(t *testing.T, files pki.SetFiles, protocols string) string {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	port := harness.FreePort(t)
	conf := filepath.Join(dir, "nginx.conf")
	body := fmt.Sprintf(nginxConf, dir, port, files.ServerCert, files.ServerKey, files.CA, protocols)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // graceful shutdown of master and worker
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s\noutput:\n%s", log, out.String())
		}
	})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited at startup (%v): %s\n%s", err, out.String(), log)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx not listening on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEdgeResumesNginxBackend: the same guarantee against a non-Caddy,
// non-Go upstream — nginx (OpenSSL) with a shared session cache, session
// tickets and required client certificates. nginx reports whether each
// connection reused a session ($ssl_session_reused).
func TestEdgeResumesNginxBackend(t *testing.T) {
	_, files := harness.NewPKI(t)
	for _, proto := range []string{"TLSv1.3", "TLSv1.2"} {
		t.Run(proto, func(t *testing.T) {
			addr := startNginx(t, files, proto)
			e := startEdge(t, "", fmt.Sprintf("\treverse_proxy https://%s {\n\t\ttransport http_resume {\n%s\n\t\t}\n\t}", addr, transportOptions(files)))
			c := e.counter()
			const n = 200
			var reused int64
			for i := 0; i < n; i++ {
				body, backend := e.get("/")
				if backend != "nginx" || !strings.Contains(body, "verify=SUCCESS") {
					t.Fatalf("request %d: %q from %q: want nginx with a verified client certificate", i, body, backend)
				}
				switch {
				case strings.Contains(body, "reused=r"):
					if i == 0 {
						t.Fatal("the first connection cannot resume")
					}
					reused++
				case strings.Contains(body, "reused=."):
				default:
					t.Fatalf("request %d: unexpected body %q", i, body)
				}
			}
			requireResumeRate(t, "nginx view", reused, n)
			r, f := c.delta()
			if r+f != n {
				t.Errorf("metric counted %v handshakes for %d requests: upstream keep-alive should be off", r+f, n)
			}
			if int64(r) != reused {
				t.Errorf("edge metric says %v resumed, nginx says %d", r, reused)
			}
		})
	}
}
