package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// SClientOptions configure one `openssl s_client` run.
type SClientOptions struct {
	// Addr is the server, HOST:PORT.
	Addr string
	// ServerName is sent as SNI (-servername) and used as the Host header
	// of the default request; default "localhost".
	ServerName string
	// CAFile verifies the server (-CAfile); CertFile and KeyFile are the
	// client certificate and key (-cert, -key), both optional.
	CAFile, CertFile, KeyFile string
	// CertChainFile holds the intermediates s_client sends after the client
	// certificate (-cert_chain; s_client sends only the first certificate
	// of CertFile otherwise). Default: CertFile, which for pki leaves holds
	// the leaf followed by its intermediates.
	CertChainFile string
	// TLSVersion pins the protocol: "1.2" (-tls1_2), "1.3" (-tls1_3) or ""
	// for openssl's default.
	TLSVersion string
	// SessOut saves the session (-sess_out); SessIn offers a saved one
	// (-sess_in).
	SessOut, SessIn string
	// Stdin is sent to the server after the handshake. Default: an
	// HTTP/1.1 GET / with Connection: close. s_client runs with -ign_eof, so
	// it reads until the server closes the connection, which makes sure a
	// TLS 1.3 session ticket (sent after the handshake) is received and
	// saved before it exits.
	Stdin string
	// ExtraArgs are appended to the command line.
	ExtraArgs []string
}

// SClientResult is the outcome of one s_client run.
type SClientResult struct {
	// Output is everything s_client printed (stdout and stderr).
	Output string
	// Reused is true when s_client reported "Reused, ..." (the session was
	// resumed) and false for "New, ...".
	Reused bool
	// Protocol is the version s_client reported, e.g. "TLSv1.3".
	Protocol string
	// VerifyOK is true when the server certificate verified
	// ("Verify return code: 0 (ok)").
	VerifyOK bool
	// Args is the command line that was run, for failure messages.
	Args []string
}

var (
	sessionLine = regexp.MustCompile(`(?m)^(New|Reused), (TLSv[0-9.]+|SSLv3|\(NONE\))`)
	verifyOK    = regexp.MustCompile(`(?m)^\s*Verify return code: 0 \(ok\)`)
)

// OpenSSLBinary returns the openssl path or an error naming the package to
// install.
func OpenSSLBinary() (string, error) {
	p, err := exec.LookPath("openssl")
	if err != nil {
		return "", errors.New("openssl not found in PATH: install the Debian package openssl (make test does this when run as root)")
	}
	return p, nil
}

// SClient runs `openssl s_client` once, bounded by ctx (or 20 seconds when
// ctx has no deadline). It returns an error, together with the result, when
// openssl exits non-zero or prints no session line (the handshake failed).
func SClient(ctx context.Context, o SClientOptions) (*SClientResult, error) {
	bin, err := OpenSSLBinary()
	if err != nil {
		return nil, err
	}
	if o.ServerName == "" {
		o.ServerName = "localhost"
	}
	if o.CertChainFile == "" {
		o.CertChainFile = o.CertFile
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
	}
	args := []string{"s_client", "-connect", o.Addr, "-servername", o.ServerName, "-ign_eof"}
	switch o.TLSVersion {
	case "":
	case "1.2":
		args = append(args, "-tls1_2")
	case "1.3":
		args = append(args, "-tls1_3")
	default:
		return nil, fmt.Errorf("harness: unsupported TLSVersion %q (want 1.2, 1.3 or empty)", o.TLSVersion)
	}
	for _, f := range []struct{ flag, val string }{
		{"-CAfile", o.CAFile}, {"-cert", o.CertFile}, {"-cert_chain", o.CertChainFile}, {"-key", o.KeyFile},
		{"-sess_out", o.SessOut}, {"-sess_in", o.SessIn},
	} {
		if f.val != "" {
			args = append(args, f.flag, f.val)
		}
	}
	if o.CAFile != "" {
		args = append(args, "-verify_return_error")
	}
	args = append(args, o.ExtraArgs...)
	stdin := o.Stdin
	if stdin == "" {
		host := o.ServerName
		if _, port, err := net.SplitHostPort(o.Addr); err == nil {
			host = net.JoinHostPort(o.ServerName, port)
		}
		stdin = "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	res := &SClientResult{Output: out.String(), Args: append([]string{"openssl"}, args...)}
	if m := sessionLine.FindStringSubmatch(res.Output); m != nil {
		res.Reused = m[1] == "Reused"
		res.Protocol = m[2]
	}
	res.VerifyOK = verifyOK.MatchString(res.Output)
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s: %w\n%s", strings.Join(res.Args, " "), ctx.Err(), res.Output)
	case runErr != nil:
		return res, fmt.Errorf("%s: %w\n%s", strings.Join(res.Args, " "), runErr, res.Output)
	case res.Protocol == "" || res.Protocol == "(NONE)":
		return res, fmt.Errorf("%s: no TLS session established\n%s", strings.Join(res.Args, " "), res.Output)
	}
	return res, nil
}

// SClientResume runs s_client twice against the same server: first with
// -sess_out into a temporary file, then with -sess_in from it. second.Reused
// says whether the server resumed the saved session. o.SessIn and o.SessOut
// are ignored.
func SClientResume(ctx context.Context, t testing.TB, o SClientOptions) (first, second *SClientResult, err error) {
	t.Helper()
	sess := filepath.Join(t.TempDir(), "session.pem")
	o.SessIn, o.SessOut = "", sess
	if first, err = SClient(ctx, o); err != nil {
		return first, nil, err
	}
	if st, statErr := os.Stat(sess); statErr != nil || st.Size() == 0 {
		return first, nil, fmt.Errorf("openssl saved no session (no ticket received?): %v\n%s", statErr, first.Output)
	}
	o.SessIn, o.SessOut = sess, ""
	second, err = SClient(ctx, o)
	return first, second, err
}
