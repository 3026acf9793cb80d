//go:build !linux

package testserver

// bindToLoopback: only Linux ties a socket to an interface; the
// LoopbackListener's address check still applies.
func bindToLoopback(uintptr) bool { return false }
