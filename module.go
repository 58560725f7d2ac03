// Package tlsresume is the root of the caddy-tlsresume plugin. Importing it
// (as xcaddy does with `--with github.com/tlsresume/caddy-tlsresume`) registers
// every module of the plugin with Caddy; the modules themselves live in the
// sub-packages listed in DESIGN.md.
package tlsresume
