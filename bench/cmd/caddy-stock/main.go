// Command caddy-stock is stock Caddy with its standard modules and nothing
// else: the baseline the comparative benchmark measures the plugin against.
// It is built from the same module graph as the plugin's cmd/caddy, so both
// binaries carry the same Caddy version and Go toolchain.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy's standard modules
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

func main() {
	caddycmd.Main()
}
