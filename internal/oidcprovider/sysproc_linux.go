package oidcprovider

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel end the child should its parent die
// without stopping it (PR_SET_PDEATHSIG).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
