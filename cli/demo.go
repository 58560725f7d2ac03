package cli

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func init() {
	registerSubcommand(func() *cobra.Command {
		var o demoOptions
		cmd := &cobra.Command{
			Use:   "demo [--dir <path>] [--listen <host:port>] [--admin <host:port>]",
			Short: "Runs Caddy serving an mTLS demo site with session resumption on",
			Long: `
Generates a throwaway demo PKI (a root and an intermediate CA, a server
certificate for localhost and two client certificates) and a KEK into --dir,
writes a Caddyfile there for an mTLS-protected site on --listen with the
tls_resume app on (file storage in --dir, no Redis), prints curl and
openssl s_client commands to try it, and runs Caddy with that Caddyfile in
the foreground until Ctrl-C.

The PKI and the KEK are generated on the first run and reused afterwards
(until the certificates are about to expire); the Caddyfile is rewritten on
every run. Nothing here is fit for production use.
`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runDemo(cmd.OutOrStdout(), o)
			},
		}
		cmd.Flags().StringVar(&o.Dir, "dir", "./demo-data", "Directory for the demo's PKI, KEK, Caddyfile and storage")
		cmd.Flags().StringVar(&o.Listen, "listen", "localhost:8443", "Address of the demo site (HOST:PORT; the site answers as https://localhost:PORT)")
		cmd.Flags().StringVar(&o.Admin, "admin", "localhost:2019", "Address of Caddy's admin endpoint")
		return cmd
	})
}

func runDemo(out io.Writer, o demoOptions) error {
	f, err := prepareDemo(o)
	if err != nil {
		return err
	}
	printDemoInstructions(out, f, o)
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this Caddy binary to run it: %w", err)
	}
	return runCaddy(self, []string{"run", "--config", f.Caddyfile, "--adapter", "caddyfile"})
}

// printDemoInstructions prints what the demo set up and copy-pasteable
// commands to try it.
func printDemoInstructions(w io.Writer, f demoFiles, o demoOptions) {
	connect := f.Host
	if connect == "" {
		connect = "localhost"
	}
	connect = net.JoinHostPort(connect, f.Port)
	url := "https://localhost:" + f.Port + "/"
	pkiState := "reused"
	if f.Generated {
		pkiState = "generated now"
	}
	q := shellQuote
	request := `printf 'GET / HTTP/1.1\r\nHost: localhost:` + f.Port + `\r\nConnection: close\r\n\r\n'`
	sclient := "openssl s_client -connect " + q(connect) + " -servername localhost" +
		" -CAfile " + q(f.PKI.CA) + " -cert " + q(f.PKI.ClientACert) + " -cert_chain " + q(f.PKI.ClientACert) +
		" -key " + q(f.PKI.ClientAKey) + " -ign_eof"

	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("")
	p("caddy-tlsresume demo")
	p("  directory  %s (PKI %s)", f.Dir, pkiState)
	p("  Caddyfile  %s", f.Caddyfile)
	p("  site       %s  (mTLS required; tls_resume on, file storage, no Redis)", url)
	p("  admin      http://%s/", o.Admin)
	p("")
	p("1. An mTLS request as client A (payments-api):")
	p("")
	p("   curl --cert %s --key %s --cacert %s %s", q(f.PKI.ClientACert), q(f.PKI.ClientAKey), q(f.PKI.CA), url)
	p("")
	p("   The answer names the client certificate and says whether the TLS session")
	p("   was resumed. Without --cert/--key the handshake is refused.")
	p("")
	p("2. A full handshake that saves the session, then one that resumes it:")
	p("")
	p("   %s | %s -sess_out %s", request, sclient, q(f.Session))
	p("   %s | %s -sess_in %s", request, sclient, q(f.Session))
	p("")
	p(`   The first prints "New, TLSv1.3, ..." and "resumed:  false"; the second`)
	p(`   must print "Reused, TLSv1.3, ..." and "resumed:  true". Add -tls1_2 to both`)
	p(`   commands to see the same with TLS 1.2.`)
	p("")
	p(`3. Caddy's access log (below) has "resumed":true for each resumed connection.`)
	p("")
	p("Starting Caddy; press Ctrl-C to stop.")
	p("")
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// characters that are safe unquoted.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-:+=@,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
