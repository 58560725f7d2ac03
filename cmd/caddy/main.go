// Command caddy is standard Caddy with the caddy-tlsresume plugin compiled in,
// for `go run ./cmd/caddy` during development and for the test harness. Users
// normally build their own binary with xcaddy (see xcaddy.md).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy's standard modules
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// plug in every module of this plugin
	_ "github.com/tlsresume/caddy-tlsresume"
)

func main() {
	caddycmd.Main()
}
