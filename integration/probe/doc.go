// Package probe runs `caddy tls-resume probe` from the built binary against
// Caddy processes serving a mutual-TLS site with and without the tls_resume
// app, over TLS 1.2, TLS 1.3 and HTTP/3.
package probe
