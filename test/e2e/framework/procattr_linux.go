package framework

import "syscall"

// childProcAttr makes the kernel kill child processes when the test process
// dies without calling stop, for example on a go test timeout.
//
// NOTE: Linux sends the signal when the OS thread that started the child
// exits, not the process. The Go runtime rarely ends threads, so this works
// in practice but is not guaranteed.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
