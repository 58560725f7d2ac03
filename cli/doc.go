// Package cli registers the `caddy tls-resume` command and its subcommands
// (probe, bench, keygen, status, demo).
package cli
