// Package earlydata implements the early_data_guard HTTP handler
// (http.handlers.early_data_guard), which answers 425 Too Early (RFC 8470) to
// requests received in TLS or QUIC early data (0-RTT) whose method is not
// safe to replay, so that clients retry them once the handshake has
// completed.
//
// A request is early when it arrived before Caddy's handshake with the
// client completed (HTTP/3 with 0-RTT, Caddy's default) or when a trusted
// proxy (the server's trusted_proxies) forwarded it with an Early-Data
// header. Early-Data headers from other peers are removed.
//
// The policy is two pure functions, classify (is the request early, must its
// header go) and admit (may an early request be served), which the handler
// applies; the Caddyfile syntax is documented on Guard.UnmarshalCaddyfile.
// Early requests set the request variable early_data (placeholder
// {http.vars.early_data}) and count in
// caddy_tls_resume_early_data_requests_total{outcome="allowed"|"rejected"}.
package earlydata
