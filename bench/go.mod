module github.com/tlsresume/caddy-tlsresume/bench

go 1.26.8

require github.com/tlsresume/caddy-tlsresume v0.0.0

replace github.com/tlsresume/caddy-tlsresume => ../
