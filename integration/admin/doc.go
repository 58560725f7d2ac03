// Package admin tests the tls_resume admin API (admin.api.tls_resume)
// against real Caddy processes sharing one ring: status, rotate, invalidate
// and revoke, as clients see their effect on every node.
package admin
