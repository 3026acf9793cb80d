//go:build unix

package core

import (
	"net"

	"golang.org/x/sys/unix"
)

// raiseUDPBuffers asks for want bytes of receive and send buffer on c and
// reports what the kernel gave (Linux reports twice what it grants, as
// quic-go's check reads it) and whether both reached want.
func raiseUDPBuffers(c *net.UDPConn, want int) (rcv, snd int, ok bool) {
	_ = c.SetReadBuffer(want)
	_ = c.SetWriteBuffer(want)
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var rerr, serr error
	if err := raw.Control(func(fd uintptr) {
		rcv, rerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	}); err != nil || rerr != nil || serr != nil {
		return rcv, snd, false
	}
	return rcv, snd, rcv >= want && snd >= want
}
