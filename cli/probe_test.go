package cli

import (
	"bytes"
	"crypto/tls"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/tlsresume/caddy-tlsresume/internal/pki"
)

func probePKI(t *testing.T) (*pki.Set, pki.SetFiles) {
	t.Helper()
	set, err := pki.NewSet(pki.ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	files, err := set.WriteFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return set, files
}

// serverTLS is a stock Go server configuration requiring a client
// certificate from set's root; Go's own session tickets resume it.
func serverTLS(set *pki.Set) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{set.Server.TLSCertificate()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    set.Root.Pool(),
	}
}

// startHTTPS serves HTTPS on a loopback port with cfg.
func startHTTPS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

func runProbeCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := findSubcommand(t, "probe")
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

var probeLine = regexp.MustCompile(`^(\d+)  (full|resumed)\s+\S+s  (h3 \()?TLS 1\.[23]\)?  HTTP (\d+)  (no ticket|ticket \d+s|\d+ tickets \d+s|ticket \(TLS 1\.2\))(  early data: (accepted|rejected|no))?$`)

// kinds returns the full/resumed word of every line, checking their form.
func kinds(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		m := probeLine.FindStringSubmatch(line)
		if m == nil || m[1] != itoa(i+1) {
			t.Fatalf("line %d %q is not a probe line:\n%s", i+1, line, out)
		}
		got = append(got, m[2])
	}
	return got
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestProbeTCP(t *testing.T) {
	set, files := probePKI(t)
	addr := startHTTPS(t, serverTLS(set))
	noTickets := serverTLS(set)
	noTickets.SessionTicketsDisabled = true
	addrNoTickets := startHTTPS(t, noTickets)
	for _, tc := range []struct {
		proto, addr, version string
		want                 string
	}{
		{"1.3", addr, "TLS 1.3  HTTP 204  ticket 604800s", "full resumed resumed"},
		{"1.2", addr, "TLS 1.2  HTTP 204  ticket (TLS 1.2)", "full resumed resumed"},
		{"", addr, "TLS 1.3  HTTP 204  ticket 604800s", "full resumed resumed"},
		{"1.3", addrNoTickets, "TLS 1.3  HTTP 204  no ticket", "full full full"},
		{"1.2", addrNoTickets, "TLS 1.2  HTTP 204  no ticket", "full full full"},
	} {
		args := []string{"--count", "3", "--servername", "localhost", "--cert", files.ClientACert, "--key", files.ClientAKey, "--ca", files.CA, tc.addr}
		if tc.proto != "" {
			args = append([]string{"--tls", tc.proto}, args...)
		}
		out, err := runProbeCmd(t, args...)
		if err != nil {
			t.Fatalf("--tls %q: %v\n%s", tc.proto, err, out)
		}
		if got := strings.Join(kinds(t, out), " "); got != tc.want || !strings.Contains(out, tc.version) {
			t.Errorf("--tls %q against %s: got %s, want %s with %s:\n%s", tc.proto, tc.addr, got, tc.want, tc.version, out)
		}
	}
}

func TestProbeErrors(t *testing.T) {
	set, files := probePKI(t)
	addr := startHTTPS(t, serverTLS(set))

	// No client certificate: the server refuses every connection.
	out, err := runProbeCmd(t, "--count", "2", "--servername", "localhost", "--ca", files.CA, addr)
	if err == nil || !strings.Contains(err.Error(), "2 of 2 connections") || !regexp.MustCompile(`(?m)\A1  error .*\n2  error .*\n\z`).MatchString(out) {
		t.Errorf("without client certificate: %v\n%s", err, out)
	}
	// Server not trusted.
	if _, err := runProbeCmd(t, "--count", "1", "--cert", files.ClientACert, "--key", files.ClientAKey, addr); err == nil {
		t.Error("untrusted server accepted")
	}
	// Nothing listening.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	if out, err := runProbeCmd(t, "--count", "1", dead); err == nil || !strings.Contains(out, "1  error") {
		t.Errorf("closed port: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls", "1.1", addr}, `--tls: "1.1"`},
		{[]string{"--cert", files.ClientACert, addr}, "--cert and --key go together"},
		{[]string{"--count", "0", addr}, "--count: must be at least 1"},
		{[]string{"--ca", files.ClientAKey, addr}, "--ca: no PEM certificates"},
		{[]string{"no-port"}, `address "no-port"`},
	} {
		if _, err := runProbeCmd(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestProbeH3(t *testing.T) {
	set, files := probePKI(t)
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{
		TLSConfig:  http3.ConfigureTLSConfig(serverTLS(set)),
		QUICConfig: &quic.Config{Allow0RTT: true},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		}),
	}
	go srv.Serve(udp)
	t.Cleanup(func() { srv.Close(); udp.Close() })

	out, err := runProbeCmd(t, "--tls", "h3", "--count", "3", "--servername", "localhost",
		"--cert", files.ClientACert, "--key", files.ClientAKey, "--ca", files.CA, udp.LocalAddr().String())
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got := strings.Join(kinds(t, out), " "); got != "full resumed resumed" {
		t.Fatalf("got %s:\n%s", got, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if !strings.HasSuffix(lines[0], "ticket 604800s  early data: no") || !strings.HasSuffix(lines[1], "early data: accepted") || !strings.HasSuffix(lines[2], "early data: accepted") {
		t.Errorf("early data not reported as expected:\n%s", out)
	}
}

func TestProbeInterval(t *testing.T) {
	set, files := probePKI(t)
	addr := startHTTPS(t, serverTLS(set))
	start := time.Now()
	out, err := runProbeCmd(t, "--count", "3", "--interval", "100ms", "--servername", "localhost",
		"--cert", files.ClientACert, "--key", files.ClientAKey, "--ca", files.CA, addr)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Two pauses between three connections: a lower bound only.
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("3 connections at --interval 100ms took %s", el)
	}
	if got := strings.Join(kinds(t, out), " "); got != "full resumed resumed" {
		t.Errorf("got %s:\n%s", got, out)
	}
	if _, err := runProbeCmd(t, "--interval", "-1s", addr); err == nil || !strings.Contains(err.Error(), "--interval must not be negative") {
		t.Errorf("negative interval: %v", err)
	}
}

// h3Server serves HTTP/3 on a loopback port with set's mTLS configuration
// and handler.
func h3Server(t *testing.T, set *pki.Set, allow0RTT bool, handler http.HandlerFunc) string {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http3.Server{
		TLSConfig:  http3.ConfigureTLSConfig(serverTLS(set)),
		QUICConfig: &quic.Config{Allow0RTT: allow0RTT},
		Handler:    handler,
	}
	go srv.Serve(udp)
	t.Cleanup(func() { srv.Close(); udp.Close() })
	return udp.LocalAddr().String()
}

// TestProbeEarlyDataAndHost: --early-data sends GET / in 0-RTT over h3
// (quic-go's Used0RTT on the client says the server accepted it), and
// --host sets the Host header (the :authority over h3) independently of
// the SNI, over TCP and h3.
func TestProbeEarlyDataAndHost(t *testing.T) {
	set, files := probePKI(t)
	type seen struct {
		method, host, sni string
	}
	var mu sync.Mutex
	var got []seen
	record := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, seen{r.Method, r.Host, r.TLS.ServerName})
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
	common := []string{"--count", "3", "--servername", "localhost", "--host", "api.example.com",
		"--cert", files.ClientACert, "--key", files.ClientAKey, "--ca", files.CA}

	for _, allow := range []bool{true, false} {
		got = nil
		addr := h3Server(t, set, allow, record)
		out, err := runProbeCmd(t, append(common, "--early-data", addr)...)
		if err != nil {
			t.Fatalf("--early-data (server allows 0-RTT: %v): %v\n%s", allow, err, out)
		}
		if k := strings.Join(kinds(t, out), " "); k != "full resumed resumed" {
			t.Fatalf("got %s:\n%s", k, out)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		want := []string{"no", "accepted", "accepted"}
		if !allow {
			want = []string{"no", "no", "no"} // the tickets allow no early data
		}
		for i, l := range lines {
			if !strings.Contains(l, "h3 (TLS 1.3)  HTTP 200") || !strings.HasSuffix(l, "early data: "+want[i]) {
				t.Errorf("line %d %q: want HTTP 200 over h3 and early data %s", i+1, l, want[i])
			}
		}
		mu.Lock()
		for i, s := range got {
			if s.method != http.MethodGet || s.host != "api.example.com" || s.sni != "localhost" {
				t.Errorf("request %d seen by the server: %+v", i+1, s)
			}
		}
		mu.Unlock()
	}

	// --host over TCP.
	var host, sni string
	l, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS(set))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		host, sni = r.Host, r.TLS.ServerName
		mu.Unlock()
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	if out, err := runProbeCmd(t, append(common, l.Addr().String())...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	mu.Lock()
	if host != "api.example.com" || sni != "localhost" {
		t.Errorf("TCP: server saw Host %q SNI %q", host, sni)
	}
	mu.Unlock()

	// --early-data needs h3.
	if _, err := runProbeCmd(t, "--early-data", "--tls", "1.3", l.Addr().String()); err == nil || !strings.Contains(err.Error(), "--early-data: needs --tls h3") {
		t.Errorf("--early-data --tls 1.3: %v", err)
	}
}
