package testserver

import "syscall"

// bindToLoopback ties a socket to the loopback interface.
func bindToLoopback(fd uintptr) bool {
	return syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, "lo") == nil
}
