module github.com/tlsresume/caddy-tlsresume/integration

go 1.26.8

replace github.com/tlsresume/caddy-tlsresume => ../
