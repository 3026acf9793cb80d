//go:build unix

package core

import (
	"errors"
	"net"
	"syscall"
)

// connSilent reports whether nothing waits to be read on c: the peer has
// neither closed it nor sent anything. One non-blocking peek; true when c
// does not give its descriptor.
func connSilent(c net.Conn) bool {
	sc, ok := rawConnOf(c).(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	silent := false
	var buf [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		silent = n < 0 && errors.Is(err, syscall.EAGAIN)
		return true // never wait
	})
	return err == nil && silent
}

// rawConnOf is the connection the backend's dial wraps in c.
func rawConnOf(c net.Conn) net.Conn {
	for {
		switch v := c.(type) {
		case *trackedConn:
			c = v.Conn
		case *timedConn:
			c = v.Conn
		default:
			return c
		}
	}
}
