package redistest

import "syscall"

// sysProcAttr asks the kernel to kill the server when the test binary
// dies (a panic or `go test -timeout`), so no redis-server outlives it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
