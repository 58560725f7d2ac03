package caddyfile

import (
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/tlsresume/caddy-tlsresume/tlsresume"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("tls_resume", parseTLSResume)
}

// parseTLSResume turns the tls_resume global option into the tls_resume app.
func parseTLSResume(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("tls_resume: the global option may appear only once")
	}
	app := new(tlsresume.App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{
		Name:  "tls_resume",
		Value: caddyconfig.JSON(app, nil),
	}, nil
}
