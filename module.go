// Package tlsresume is the root of the caddy-tlsresume plugin. Importing it
// (as xcaddy does with `--with github.com/tlsresume/caddy-tlsresume`) registers
// every module of the plugin with Caddy; the modules themselves live in the
// sub-packages listed in docs/architecture.md.
package tlsresume

import (
	// Caddyfile global option and directive registrations.
	_ "github.com/tlsresume/caddy-tlsresume/caddyfile"
	// The `caddy tls-resume` command.
	_ "github.com/tlsresume/caddy-tlsresume/cli"
	// client_cert matcher and verifier.
	_ "github.com/tlsresume/caddy-tlsresume/clientcert"
	// early_data_guard handler.
	_ "github.com/tlsresume/caddy-tlsresume/earlydata"
	// Ring persistence and session stores.
	_ "github.com/tlsresume/caddy-tlsresume/storage"
	// The tls_resume app and its admin API.
	_ "github.com/tlsresume/caddy-tlsresume/tlsresume"
	// http_resume reverse-proxy transport.
	_ "github.com/tlsresume/caddy-tlsresume/upstream"
)
