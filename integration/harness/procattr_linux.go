package harness

import "syscall"

// procAttr makes the kernel kill a node if the test process dies without
// running its cleanups (a panic, a timeout kill), so no Caddy outlives it.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
