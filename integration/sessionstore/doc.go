// Package sessionstore tests the tls_resume session_store against real
// Caddy processes and a real redis-server: sessions stored in Redis resume
// on every node, and a dead or hung Redis only costs full handshakes.
package sessionstore
