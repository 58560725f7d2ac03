package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// server is one kind of TLS server the benchmark compares.
type server struct {
	// id names the server in flags and result files.
	id string
	// label names it in the report.
	label string
	// resumesMTLS is whether the server can resume sessions of clients
	// that authenticated with a certificate (stock Caddy cannot: it turns
	// session tickets off for sites with client authentication).
	resumesMTLS bool
	// resumedOnly servers are measured in resumed cells only.
	resumedOnly bool
	start       func(ctx context.Context, e *benchEnv, chains []*chain) (*runningServer, error)
}

// runningServer is a started server: one process with one listener per
// chain, addrs[i] serving chains[i].
type runningServer struct {
	server *server
	proc   *process
	addrs  []string
}

// servers is every server the benchmark knows, in report order.
var servers = []*server{
	{id: "plugin", label: "Caddy + tls_resume", resumesMTLS: true, start: startPluginCaddy},
	{id: "caddy", label: "Caddy (stock)", resumesMTLS: false, start: startStockCaddy},
	{id: "nginx", label: "nginx", resumesMTLS: true, start: startNginx},
	{id: "haproxy", label: "HAProxy", resumesMTLS: true, start: startHAProxy},
	// The floor: stock Caddy without client authentication, resuming with
	// Go's own session tickets (Caddy's standard STEK). Resumed mTLS
	// cannot be cheaper than this.
	{id: "floor", label: "Caddy (stock), no client auth", resumesMTLS: true, resumedOnly: true, start: startFloorCaddy},
}

func serverByID(id string) (*server, error) {
	var ids []string
	for _, s := range servers {
		if s.id == id {
			return s, nil
		}
		ids = append(ids, s.id)
	}
	return nil, fmt.Errorf("-servers: unknown server %q (known: %s)", id, strings.Join(ids, ", "))
}

// benchEnv is what starting servers needs: binaries, a work directory and
// the CPUs servers run on.
type benchEnv struct {
	dir        string
	pluginBin  string
	stockBin   string
	nginxBin   string
	haproxyBin string
	// serverCPUs is the taskset CPU list for servers ("" = not pinned).
	serverCPUs string
}

// serverDir makes a fresh directory for one server instance.
func (e *benchEnv) serverDir(name string) (string, error) {
	d, err := os.MkdirTemp(e.dir, name+"-")
	if err != nil {
		return "", err
	}
	return d, nil
}

// waitReady waits until every listener of rs serves TLS to the client.
func (rs *runningServer) waitReady(ctx context.Context, chains []*chain) error {
	for i, c := range chains {
		if err := rs.proc.waitTLS(ctx, rs.addrs[i], c.verifyingConfig(tls.VersionTLS13)); err != nil {
			rs.proc.stop()
			return err
		}
	}
	return nil
}

func startPluginCaddy(ctx context.Context, e *benchEnv, chains []*chain) (*runningServer, error) {
	kek := base64.StdEncoding.EncodeToString(randomBytes(32))
	return startCaddyfile(ctx, e, "plugin", e.pluginBin, chains, "\ttls_resume {\n\t\tkek {env.TLS_RESUME_KEK}\n\t}\n", []string{"TLS_RESUME_KEK=" + kek})
}

func startStockCaddy(ctx context.Context, e *benchEnv, chains []*chain) (*runningServer, error) {
	return startCaddyfile(ctx, e, "caddy", e.stockBin, chains, "", nil)
}

func startFloorCaddy(ctx context.Context, e *benchEnv, chains []*chain) (*runningServer, error) {
	return startCaddySites(ctx, e, "floor", e.stockBin, chains, "", nil, plainSite)
}

// startCaddyfile runs bin with one mTLS site per chain. extraGlobals goes
// into the global options block; it is the only difference between the
// plugin's and stock Caddy's configs.
func startCaddyfile(ctx context.Context, e *benchEnv, name, bin string, chains []*chain, extraGlobals string, env []string) (*runningServer, error) {
	return startCaddySites(ctx, e, name, bin, chains, extraGlobals, env, mtlsSite)
}

// startCaddySites runs bin with one site per chain, each written by site.
func startCaddySites(ctx context.Context, e *benchEnv, name, bin string, chains []*chain, extraGlobals string, env []string, site func(int, *chain) string) (*runningServer, error) {
	dir, err := e.serverDir(name)
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(len(chains) + 1)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(caddyGlobals(ports[len(chains)], filepath.Join(dir, "storage"), extraGlobals))
	var addrs []string
	for i, c := range chains {
		b.WriteString(site(ports[i], c))
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	p, err := launchCaddy(e, name, bin, dir, b.String(), "caddyfile", env)
	if err != nil {
		return nil, err
	}
	rs := &runningServer{proc: p, addrs: addrs}
	return rs, rs.waitReady(ctx, chains)
}

// caddyGlobals is the global options block of every Caddyfile the harness
// writes: its own admin port and storage, no automatic HTTPS (the sites
// bring their certificates), nothing written outside the run's directory.
func caddyGlobals(adminPort int, storage, extra string) string {
	return fmt.Sprintf("{\n\tadmin 127.0.0.1:%d\n\tstorage file_system %s\n\tpersist_config off\n\tskip_install_trust\n\tauto_https off\n%s}\n",
		adminPort, storage, extra)
}

// mtlsSite is a site on 127.0.0.1:port serving c's server certificate and
// requiring a client certificate from c's root.
func mtlsSite(port int, c *chain) string {
	return mtlsSiteWith(port, c.serverCert, c.serverKey, c.ca, "\trespond \"ok\"\n")
}

// mtlsSiteWith is a site on 127.0.0.1:port serving the server certificate
// in cert and key, requiring a client certificate from the root in ca, and
// handling requests with body (directives, each line tab-indented).
func mtlsSiteWith(port int, cert, key, ca, body string) string {
	return fmt.Sprintf(`
https://localhost:%d {
	bind 127.0.0.1
	tls %s %s {
		client_auth {
			mode require_and_verify
			trust_pool file %s
		}
	}
%s}
`, port, cert, key, ca, body)
}

// plainSite is mtlsSite without client authentication.
func plainSite(port int, c *chain) string {
	return fmt.Sprintf(`
https://localhost:%d {
	bind 127.0.0.1
	tls %s %s
	respond "ok"
}
`, port, c.serverCert, c.serverKey)
}

// launchCaddy writes config into dir and runs bin on it.
func launchCaddy(e *benchEnv, name, bin, dir, config, adapter string, env []string) (*process, error) {
	file := filepath.Join(dir, "Caddyfile")
	if adapter == "json" {
		file = filepath.Join(dir, "caddy.json")
	}
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		return nil, err
	}
	argv := []string{bin, "run", "--config", file}
	if adapter != "json" {
		argv = append(argv, "--adapter", adapter)
	}
	env = append(env, caddyEnv(dir)...)
	return startProcess(name, dir, env, e.serverCPUs, argv...)
}

// caddyEnv keeps a Caddy process's own files (its data and config
// directories) inside dir.
func caddyEnv(dir string) []string {
	return []string{
		"HOME=" + dir,
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
	}
}

// startNginx runs nginx with one worker (it gets one CPU, like the other
// servers), a shared session cache and a session ticket key file: nginx's
// own recommended resumption setup.
func startNginx(ctx context.Context, e *benchEnv, chains []*chain) (*runningServer, error) {
	dir, err := e.serverDir("nginx")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(len(chains))
	if err != nil {
		return nil, err
	}
	ticketKey := filepath.Join(dir, "ticket.key")
	if err := os.WriteFile(ticketKey, randomBytes(80), 0o600); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events {
	worker_connections 4096;
}
http {
	access_log off;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	default_type text/plain;
	ssl_protocols TLSv1.2 TLSv1.3;
	ssl_session_cache shared:TLS:20m;
	ssl_session_timeout 1h;
	ssl_session_tickets on;
	ssl_session_ticket_key %[2]s;
	ssl_verify_client on;
	ssl_verify_depth 3;
`, dir, ticketKey)
	var addrs []string
	for i, c := range chains {
		fmt.Fprintf(&b, `	server {
		listen 127.0.0.1:%d ssl;
		server_name localhost;
		ssl_certificate %s;
		ssl_certificate_key %s;
		ssl_client_certificate %s;
		location / {
			return 200 "ok";
		}
	}
`, ports[i], c.serverCert, c.serverKey, c.ca)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	b.WriteString("}\n")
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	// -e: nginx opens its default error log before reading the config,
	// which fails for a user that cannot write /var/log/nginx.
	p, err := startProcess("nginx", dir, nil, e.serverCPUs, e.nginxBin, "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return nil, err
	}
	rs := &runningServer{proc: p, addrs: addrs}
	return rs, rs.waitReady(ctx, chains)
}

// startHAProxy runs HAProxy with one thread, its SSL session cache and a
// TLS ticket keys file: HAProxy's own recommended resumption setup.
func startHAProxy(ctx context.Context, e *benchEnv, chains []*chain) (*runningServer, error) {
	dir, err := e.serverDir("haproxy")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(len(chains))
	if err != nil {
		return nil, err
	}
	// HAProxy loads three keys (its TLS_TICKETS_NO): it seals with one and
	// opens with all, so a rotation that appends a key keeps old tickets.
	ticketKeys := filepath.Join(dir, "ticket.keys")
	var keys strings.Builder
	for range 3 {
		keys.WriteString(base64.StdEncoding.EncodeToString(randomBytes(80)) + "\n")
	}
	if err := os.WriteFile(ticketKeys, []byte(keys.String()), 0o600); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `global
	nbthread 1
	tune.ssl.cachesize 100000
	tune.ssl.lifetime 3600
	ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
	mode http
	timeout connect 5s
	timeout client 30s
	timeout server 30s
`)
	var addrs []string
	for i, c := range chains {
		fmt.Fprintf(&b, `
frontend tls%d
	bind 127.0.0.1:%d ssl crt %s ca-file %s verify required tls-ticket-keys %s
	http-request return status 200 content-type text/plain string "ok"
`, i, ports[i], c.serverPEM, c.ca, ticketKeys)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	p, err := startProcess("haproxy", dir, nil, e.serverCPUs, e.haproxyBin, "-db", "-f", cfg)
	if err != nil {
		return nil, err
	}
	rs := &runningServer{proc: p, addrs: addrs}
	return rs, rs.waitReady(ctx, chains)
}
