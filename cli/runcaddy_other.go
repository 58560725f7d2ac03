//go:build !unix

package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
)

// runCaddy runs `caddy ARGS...` as a child process attached to this
// terminal and waits for it. Interrupts reach the child from the console;
// this process ignores them so it can wait for Caddy's clean shutdown.
func runCaddy(bin string, args []string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	signal.Ignore(os.Interrupt)
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("caddy exited with status %d", exit.ExitCode())
	}
	return err
}
