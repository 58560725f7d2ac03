//go:build !linux

package harness

import "time"

// waitReloadSettled cannot see the process's sockets outside Linux; the
// reload race it waits out is Linux's SO_REUSEPORT behaviour.
func waitReloadSettled(pid int, timeout time.Duration) {}
