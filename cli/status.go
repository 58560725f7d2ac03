package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

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
ring storage health, and the node's handshake, resumption, ticket-rejection
and early-data counts.

--address is the admin endpoint (default localhost:2019); --json prints the
endpoint's JSON as is.
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
				if err := json.Unmarshal(body, &st); err != nil {
					return fmt.Errorf("decoding status from %s: %v", address, err)
				}
				return printStatus(cmd.OutOrStdout(), &st)
			},
		}
		cmd.Flags().StringVar(&address, "address", "localhost:2019", "admin endpoint of the running Caddy (host:port or http:// URL)")
		cmd.Flags().BoolVar(&raw, "json", false, "print the status JSON as returned by the admin API")
		return cmd
	})
}

// adminURL joins the admin address (host:port or an http URL) and path.
func adminURL(address, path string) string {
	address = strings.TrimSuffix(address, "/")
	if !strings.HasPrefix(address, "http://") && !strings.HasPrefix(address, "https://") {
		address = "http://" + address
	}
	return address + path
}

// fetchStatus GETs the status document from the admin endpoint.
func fetchStatus(ctx context.Context, address string) ([]byte, error) {
	url := adminURL(address, "/tls_resume/status")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("--address %q: %v", address, err)
	}
	resp, err := http.DefaultClient.Do(req)
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
		return nil, fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
	}
	return body, nil
}

// printStatus renders st for people.
func printStatus(w io.Writer, st *tlsresume.Status) error {
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
	p("mutual TLS:\t%d, %d resumed (%s)", h.Mutual, h.MutualResumed, percent(h.MutualResumed, h.Mutual))
	for _, name := range sortedKeys(h.ByServer) {
		c := h.ByServer[name]
		p("  server %s:\t%d, %d resumed (%s)", name, c.Total, c.Resumed, percent(c.Resumed, c.Total))
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
