// Package tlsresume implements the tls_resume Caddy app: the fleet-wide
// ticket-key ring, ticket sealing bound to each connection policy's
// client-auth realm, the handshake hooks that make mTLS session resumption
// safe, its metrics and its admin API.
package tlsresume
