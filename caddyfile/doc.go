// Package caddyfile registers the plugin's Caddyfile surface with Caddy's HTTP
// Caddyfile adapter: the tls_resume global option and the early_data_guard
// directive (with its place in the directive order). Modules keep their own
// UnmarshalCaddyfile beside their structs; this package only wires them in.
package caddyfile
