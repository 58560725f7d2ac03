//go:build unix

package cli

import (
	"fmt"
	"os"
	"syscall"
)

// runCaddy replaces this process with `caddy ARGS...`, so Caddy gets the
// terminal's signals (Ctrl-C) and the process id directly.
func runCaddy(bin string, args []string) error {
	argv := append([]string{bin}, args...)
	if err := syscall.Exec(bin, argv, os.Environ()); err != nil {
		return fmt.Errorf("running %s: %w", bin, err)
	}
	return nil // not reached: Exec does not return on success
}
