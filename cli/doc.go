// Package cli registers the `caddy tls-resume` command. Each subcommand
// (keygen, demo, and later probe, bench, status) lives in its own file and
// adds itself with registerSubcommand from an init function.
package cli
