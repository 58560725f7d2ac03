package cli

import (
	"sort"
	"sync"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "tls-resume",
		Usage: "<subcommand> [flags]",
		Short: "Tools for mutual-TLS session resumption (keygen, demo, ...)",
		Long: `
Tools that come with the caddy-tlsresume plugin, which makes mutual-TLS
session resumption safe and cluster-wide.

Run 'caddy tls-resume <subcommand> --help' for a subcommand's flags.
`,
		CobraFunc: func(cmd *cobra.Command) {
			for _, sub := range subcommands() {
				cmd.AddCommand(sub)
			}
		},
	})
}

var (
	subMu       sync.Mutex
	subBuilders []func() *cobra.Command
)

// registerSubcommand adds a subcommand of `caddy tls-resume`. Subcommand
// files call it from init; build runs when Caddy assembles its command tree,
// after every init has run.
func registerSubcommand(build func() *cobra.Command) {
	subMu.Lock()
	defer subMu.Unlock()
	subBuilders = append(subBuilders, build)
}

// subcommands builds every registered subcommand, sorted by name.
func subcommands() []*cobra.Command {
	subMu.Lock()
	builders := append([]func() *cobra.Command(nil), subBuilders...)
	subMu.Unlock()
	cmds := make([]*cobra.Command, 0, len(builders))
	for _, b := range builders {
		cmds = append(cmds, b())
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name() < cmds[j].Name() })
	return cmds
}
