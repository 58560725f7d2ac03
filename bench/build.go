package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// buildCaddys builds stock Caddy (./cmd/caddy-stock) and Caddy with the
// plugin (the root module's cmd/caddy) into dir with the go command running
// the harness. Both come from this module's one module graph, so they carry
// the same Caddy version, dependencies and Go toolchain; only the plugin
// differs.
func buildCaddys(dir string) (stock, plugin string, err error) {
	stock = filepath.Join(dir, "caddy-stock")
	plugin = filepath.Join(dir, "caddy-plugin")
	for _, b := range []struct{ out, pkg string }{
		{stock, "./cmd/caddy-stock"},
		{plugin, "github.com/tlsresume/caddy-tlsresume/cmd/caddy"},
	} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Dir = moduleDir()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return "", "", fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out.String())
		}
	}
	return stock, plugin, nil
}

// moduleDir is the bench module's directory, where this source file is
// (`go run` and `go test` build from source, so the path is the checkout's).
func moduleDir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Dir(file)
}

// ensureServers finds nginx and HAProxy, installing Debian's packages
// through the repository's install script when either is missing.
func ensureServers() (nginx, haproxy string, err error) {
	nginx, errN := lookTool("nginx")
	haproxy, errH := lookTool("haproxy")
	if errN == nil && errH == nil {
		return nginx, haproxy, nil
	}
	script := filepath.Join(moduleDir(), "..", "scripts", "install-test-deps.sh")
	cmd := exec.Command(script)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("installing nginx and HAProxy with %s: %w", script, err)
	}
	if nginx, err = lookTool("nginx"); err != nil {
		return "", "", err
	}
	if haproxy, err = lookTool("haproxy"); err != nil {
		return "", "", err
	}
	return nginx, haproxy, nil
}
