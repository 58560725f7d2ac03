package cli

import (
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// findSubcommand returns a freshly built `caddy tls-resume NAME` command.
func findSubcommand(t *testing.T, name string) *cobra.Command {
	t.Helper()
	for _, c := range subcommands() {
		if c.Name() == name {
			return c
		}
	}
	t.Fatalf("no subcommand %q registered", name)
	return nil
}

func TestTLSResumeCommandRegistered(t *testing.T) {
	cmd, ok := caddycmd.Commands()["tls-resume"]
	if !ok {
		t.Fatal("caddy command tls-resume is not registered")
	}
	if cmd.CobraFunc == nil {
		t.Fatal("tls-resume has no CobraFunc")
	}
	root := &cobra.Command{Use: "tls-resume"}
	cmd.CobraFunc(root)
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	for _, want := range []string{"demo", "keygen"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("subcommand %q missing; have %v", want, names)
		}
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Errorf("subcommands not sorted or duplicated: %v", names)
		}
	}
}
