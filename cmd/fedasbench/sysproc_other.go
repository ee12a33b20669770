//go:build !linux

package main

import "syscall"

// sysProcAttr: no parent-death signal outside Linux; -redis self stops
// the server at the end of the run.
func sysProcAttr() *syscall.SysProcAttr { return nil }
