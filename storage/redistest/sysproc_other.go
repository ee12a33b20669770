//go:build !linux

package redistest

import "syscall"

// sysProcAttr has no parent-death signal outside Linux; test cleanup
// still kills every server.
func sysProcAttr() *syscall.SysProcAttr { return nil }
