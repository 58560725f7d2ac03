package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/tlsresume/caddy-tlsresume/tlsresume/keyring"
)

func init() {
	registerSubcommand(func() *cobra.Command {
		return &cobra.Command{
			Use:   "keygen",
			Short: "Prints a new key-encryption key (KEK) for the tls_resume app",
			Long: `
Prints one new key-encryption key: 32 bytes from the operating system's
cryptographic random source, in standard base64, followed by a newline and
nothing else. Give it to every node of a fleet, for example through an
environment variable:

	export TLS_RESUME_KEK="$(caddy tls-resume keygen)"

and in the Caddyfile's global options:

	tls_resume {
		kek {env.TLS_RESUME_KEK}
	}
`,
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				kek, err := keyring.GenerateKEK()
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), kek)
				return err
			},
		}
	})
}
