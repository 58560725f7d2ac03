package smoke

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tlsresume/caddy-tlsresume/integration/harness"
)

// TestDemoEndToEnd runs `caddy tls-resume demo` from the built binary, then
// runs the very curl and openssl command lines it printed, through a shell,
// as a user would paste them: the mTLS request is answered and the second
// openssl connection resumes the saved session.
func TestDemoEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl not found: install the Debian package curl (make test does this when run as root)")
	}
	if _, err := harness.OpenSSLBinary(); err != nil {
		t.Fatal(err)
	}
	bin := harness.BuildCaddy(t)
	dir := filepath.Join(t.TempDir(), "demo-data")
	listen := harness.Addr(harness.FreePort(t))
	admin := harness.Addr(harness.FreePort(t))
	demo := harness.NewProcess(t, bin, harness.ProcessSpec{
		Name:      "demo",
		Args:      []string{"tls-resume", "demo", "--dir", dir, "--listen", listen, "--admin", admin},
		AdminAddr: admin,
	})
	if err := demo.Start(); err != nil {
		t.Fatal(err)
	}
	log := demo.Log()
	if !strings.Contains(log, "PKI generated now") {
		t.Errorf("first run did not report a new PKI:\n%s", log)
	}

	var curlLine, sessOut, sessIn string
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "curl "):
			curlLine = line
		case strings.HasPrefix(line, "printf ") && strings.Contains(line, "-sess_out "):
			sessOut = line
		case strings.HasPrefix(line, "printf ") && strings.Contains(line, "-sess_in "):
			sessIn = line
		}
	}
	if curlLine == "" || sessOut == "" || sessIn == "" {
		t.Fatalf("demo did not print curl and openssl commands:\n%s", log)
	}

	sh := func(cmdline string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}

	out, err := sh(curlLine + " --silent --show-error")
	if err != nil || !strings.Contains(out, "client:   CN=payments-api") || !strings.Contains(out, "resumed:  false") {
		t.Errorf("%s\n=> %v\n%s", curlLine, err, out)
	}
	// without the client certificate the same request is refused
	noCert := curlLine[:strings.Index(curlLine, "--cert ")] + curlLine[strings.Index(curlLine, "--cacert "):]
	if out, err := sh(noCert + " --silent --show-error"); err == nil {
		t.Errorf("%s succeeded without a client certificate:\n%s", noCert, out)
	}

	for _, proto := range []struct{ flag, want string }{{"", "TLSv1.3"}, {" -tls1_2", "TLSv1.2"}} {
		first, err := sh(sessOut + proto.flag)
		if err != nil || !strings.Contains(first, "New, "+proto.want) || !strings.Contains(first, "resumed:  false") {
			t.Errorf("%s%s\n=> %v\n%s", sessOut, proto.flag, err, first)
			continue
		}
		second, err := sh(sessIn + proto.flag)
		if err != nil || !strings.Contains(second, "Reused, "+proto.want) || !strings.Contains(second, "resumed:  true") {
			t.Errorf("second connection did not resume:\n%s%s\n=> %v\n%s", sessIn, proto.flag, err, second)
		}
	}

	// the access log records the resumption
	if !strings.Contains(demo.Log(), `"resumed":true`) {
		t.Errorf("access log has no resumed connection:\n%s", demo.LogTail(20))
	}

	// a second run reuses the PKI
	if err := demo.Restart(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(demo.Log(), "(PKI reused)") {
		t.Errorf("second run did not reuse the PKI:\n%s", demo.LogTail(40))
	}
}
