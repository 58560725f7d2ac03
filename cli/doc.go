// Package cli registers the `caddy tls-resume` command (command.go). Each
// subcommand — keygen, demo (with demofiles.go), probe, bench and status —
// lives in its own file and adds itself with registerSubcommand from an
// init function; Caddy builds them, sorted by name, when it assembles its
// command tree. demo then runs Caddy on the Caddyfile it wrote: on Unix by
// replacing this process (runcaddy_unix.go), elsewhere as a child process
// (runcaddy_other.go). status reads the admin API's GET /tls_resume/status
// into tlsresume.Status.
package cli
