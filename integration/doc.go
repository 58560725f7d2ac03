// Package integration holds the end-to-end tests of caddy-tlsresume: real
// Caddy (in-process through caddytest, and as several OS processes built from
// cmd/caddy), real redis-server, openssl s_client and quic-go clients. It is a
// separate Go module so that its test-only dependencies never reach a user's
// Caddy build.
package integration
