package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/spf13/cobra"

	"github.com/tlsresume/caddy-tlsresume/tlsresume"
)

func init() {
	registerSubcommand(func() *cobra.Command {
		var address string
		var raw bool
		cmd := &cobra.Command{
			Use:   "status [--address host:port] [--json]",
			Short: "Shows the tls_resume ring, storage health and resumption counts of a running Caddy",
			Long: `
Reads GET /tls_resume/status from a running Caddy's admin endpoint and prints
the ticket-key ring (version, KEK ID, every key's state, activation, age and
expiry — never key material), the invalidation time and deny list size,
ring storage health, and the node's handshake, resumption (and its ratio),
refusal, ticket-rejection and early-data counts since its configuration was
loaded.

--address is the admin endpoint (default localhost:2019): host:port, an
http:// URL, or unix//path/to/socket. Like Caddy's own commands, status sends
an Origin header naming that address, so an admin endpoint with
enforce_origin accepts it. --json prints the endpoint's JSON as is.
`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				cmd.SilenceUsage = true
				ctx, cancel := context.WithTimeout(cmd.Context(), 15*time.Second)
				defer cancel()
				body, err := fetchStatus(ctx, address)
				if err != nil {
					return err
				}
				if raw {
					_, err := cmd.OutOrStdout().Write(body)
					return err
				}
				var st tlsresume.Status
				var ext statusExtras
				if err := json.Unmarshal(body, &st); err != nil {
					return fmt.Errorf("decoding status from %s: %v", address, err)
				}
				if err := json.Unmarshal(body, &ext); err != nil {
					return fmt.Errorf("decoding status from %s: %v", address, err)
				}
				return printStatus(cmd.OutOrStdout(), &st, &ext)
			},
		}
		cmd.Flags().StringVar(&address, "address", "localhost:2019", "admin endpoint of the running Caddy (host:port or http:// URL)")
		cmd.Flags().BoolVar(&raw, "json", false, "print the status JSON as returned by the admin API")
		return cmd
	})
}

// adminRequest makes a request for path on the admin endpoint at address
// the way Caddy's own CLI does (AdminAPIRequest in Caddy's cmd package):
// address is an http(s) URL, host:port, or any Caddy network address
// (unix/…); over TCP the request carries an Origin header naming the admin
// address, so an endpoint with `enforce_origin` accepts it, and over a
// unix socket none (Caddy checks neither Host nor Origin there). It
// returns the request and the client to send it with.
func adminRequest(ctx context.Context, method, address, path string) (*http.Request, *http.Client, error) {
	client := http.DefaultClient
	var base, origin string
	if strings.HasPrefix(address, "http://") || strings.HasPrefix(address, "https://") {
		u, err := url.Parse(strings.TrimSuffix(address, "/"))
		if err != nil || u.Host == "" {
			return nil, nil, fmt.Errorf("--address %q: not a URL of an admin endpoint", address)
		}
		base = u.Scheme + "://" + u.Host + u.Path
		origin = u.Scheme + "://" + u.Host
	} else {
		addr, err := caddy.ParseNetworkAddress(address)
		if err != nil || addr.PortRangeSize() > 1 {
			return nil, nil, fmt.Errorf("--address %q: not an admin address (host:port, http://host:port or unix//path): %v", address, err)
		}
		if addr.IsUnixNetwork() || addr.IsFdNetwork() {
			// Caddy's CLI uses this host for sockets too.
			base = "http://127.0.0.1"
			client = &http.Client{Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, addr.Network, addr.JoinHostPort(0))
				},
			}}
		} else {
			base = "http://" + addr.JoinHostPort(0)
			origin = base
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("--address %q: %v", address, err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return req, client, nil
}

// fetchStatus GETs the status document from the admin endpoint.
func fetchStatus(ctx context.Context, address string) ([]byte, error) {
	req, client, err := adminRequest(ctx, http.MethodGet, address, "/tls_resume/status")
	if err != nil {
		return nil, err
	}
	url := req.URL.String()
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reaching Caddy's admin endpoint: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, e.Error)
		}
		if resp.StatusCode == http.StatusNotFound {
			// The plugin answers every error with a JSON body; a bare
			// 404 is the admin endpoint not knowing the path at all.
			return nil, fmt.Errorf("%s: %s: the tls_resume admin module is not present in the Caddy at %s: "+
				"that Caddy was built without github.com/tlsresume/caddy-tlsresume "+
				"(`caddy list-modules` lists admin.api.tls_resume when it is in), or --address names another server",
				url, resp.Status, address)
		}
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// statusExtras are the parts of the status document that this command
// renders when present, read from the same JSON as tlsresume.Status so
// that the CLI works with nodes that report them and nodes that do not.
type statusExtras struct {
	Handshakes struct {
		// ResumptionRatio is resumed / total handshakes since the
		// node's configuration was loaded (0 to 1); absent from older
		// nodes.
		ResumptionRatio *float64 `json:"resumption_ratio"`
	} `json:"handshakes"`
	// Refusals counts the handshakes the plugin refused since the
	// node's configuration was loaded, by reason (revoked, verifier, …); nil when the
	// node does not report them.
	Refusals map[string]uint64 `json:"refusals"`
}

// printStatus renders st (and ext, when not nil) for people.
func printStatus(w io.Writer, st *tlsresume.Status, ext *statusExtras) error {
	if ext == nil {
		ext = new(statusExtras)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("ring:\t%s (version %d, %d rotations)", st.Ring, st.Version, st.Rotations)
	p("kek id:\t%s", st.KEKID)
	p("schedule:\trotation every %s, tickets valid %s, storage polled every %s", st.RotationInterval, st.TicketLifetime, st.PollInterval)
	if st.SealingKeyID == "" {
		p("sealing key:\tnone (no ring loaded: every handshake is full)")
	} else {
		p("sealing key:\t%s", st.SealingKeyID)
	}
	if st.InvalidatedBefore != nil {
		p("invalidated before:\t%s", st.InvalidatedBefore.Format(time.RFC3339))
	} else {
		p("invalidated before:\tnever")
	}
	p("denied certificates:\t%d", st.DeniedCertificates)
	switch {
	case st.Store.LastError != "":
		at := ""
		if st.Store.LastErrorAt != nil {
			at = ", last at " + st.Store.LastErrorAt.Format(time.RFC3339)
		}
		p("storage:\tFAILING (%d consecutive failures%s): %s", st.Store.Failures, at, st.Store.LastError)
	case st.Store.LastSynced != nil:
		p("storage:\tok, last synced %s ago", ago(st.Now, *st.Store.LastSynced))
	default:
		p("storage:\tnot yet synced")
	}
	if ss := st.SessionStore; ss != nil {
		if ss.CircuitOpenUntil != nil {
			p("session store:\tCIRCUIT OPEN until %s (%d consecutive failures; fallback %s)",
				ss.CircuitOpenUntil.Format(time.RFC3339), ss.ConsecutiveFailures, ss.Fallback)
		} else {
			p("session store:\tok (%d consecutive failures; fallback %s)", ss.ConsecutiveFailures, ss.Fallback)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSTATE\tACTIVATES/ACTIVATED\tAGE\tEXPIRES")
	for _, k := range st.Keys {
		expires := "-"
		if k.Expires != nil {
			expires = k.Expires.Format(time.RFC3339)
		}
		age := (time.Duration(k.AgeSeconds) * time.Second).String()
		if k.AgeSeconds < 0 {
			age = "in " + (time.Duration(-k.AgeSeconds) * time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.State, k.Activate.Format(time.RFC3339), age, expires)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	h := st.Handshakes
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p("handshakes:\t%d, %d resumed (%s)", h.Total, h.Resumed, percent(h.Resumed, h.Total))
	if r := ext.Handshakes.ResumptionRatio; r != nil {
		if h.Total == 0 {
			p("resumption ratio:\t- (no handshakes yet)")
		} else {
			p("resumption ratio:\t%.1f%%", 100**r)
		}
	}
	p("mutual TLS:\t%d, %d resumed (%s)", h.Mutual, h.MutualResumed, percent(h.MutualResumed, h.Mutual))
	for _, name := range sortedKeys(h.ByServer) {
		c := h.ByServer[name]
		p("  server %s:\t%d, %d resumed (%s)", name, c.Total, c.Resumed, percent(c.Resumed, c.Total))
	}
	if ext.Refusals != nil {
		p("refusals:\t%s", counts(ext.Refusals))
	}
	p("ticket rejections:\t%s", counts(st.TicketRejections))
	p("early data:\t%s", counts(st.EarlyData))
	return tw.Flush()
}

func ago(now, t time.Time) string {
	d := now.Sub(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String()
}

func percent(part, total uint64) string {
	if total == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(part)/float64(total))
}

// counts renders a label→count map as "a=1 b=2", or "none".
func counts(m map[string]uint64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		if m[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
