//go:build !linux

package framework

import "syscall"

// childProcAttr returns nil, because this package sets the parent-death
// signal only on Linux.
func childProcAttr() *syscall.SysProcAttr {
	return nil
}
