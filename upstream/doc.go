// Package upstream implements the http_resume reverse-proxy transport: Caddy's
// HTTP transport plus a TLS client session cache so that upstream mTLS
// connections resume.
package upstream
