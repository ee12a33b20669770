package main

import "syscall"

// sysProcAttr asks the kernel to kill a redis-server fedasbench started
// (-redis self) when fedasbench dies, so that none outlives it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
