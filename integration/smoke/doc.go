// Package smoke exercises the integration harness for real: an in-process
// Caddy mTLS site, a cluster of Caddy processes over one storage directory,
// the built binary's module list and commands, resumption detection by the
// Go and openssl clients, and the `caddy tls-resume demo` command end to
// end.
package smoke
