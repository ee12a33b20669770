//go:build !linux

package oidcprovider

import "os/exec"

// dieWithParent is Linux's PR_SET_PDEATHSIG; elsewhere the child is
// stopped by the peer's stop function only.
func dieWithParent(*exec.Cmd) {}
