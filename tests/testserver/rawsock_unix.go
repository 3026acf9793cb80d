//go:build unix

package testserver

import (
	"fmt"
	"net"
	"strconv"
	"syscall"
	"time"
)

// rawSocket is a TCP socket on 127.0.0.1 opened with syscalls, for the
// states the net package cannot produce: bound but not listening, and
// listening with a backlog of 0 that nothing accepts.
type rawSocket struct {
	fd   int
	addr string
	held []net.Conn // connections that fill a blackhole's backlog
}

func newRawSocket() (*rawSocket, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, fmt.Errorf("testserver: socket: %w", err)
	}
	syscall.CloseOnExec(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("testserver: bind: %w", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("testserver: getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		syscall.Close(fd)
		return nil, fmt.Errorf("testserver: unexpected socket address %T", sa)
	}
	return &rawSocket{fd: fd, addr: "127.0.0.1:" + strconv.Itoa(in4.Port)}, nil
}

// newClosedPort reserves a port on 127.0.0.1 where nothing listens: the
// socket is bound (so no one else gets the port) but never listens, so
// connections are refused at once.
func newClosedPort() (*rawSocket, error) { return newRawSocket() }

// newBlackhole listens with a backlog of 0, never accepts, and fills the
// accept queue itself; the kernel then drops further SYNs, so a connect
// hangs until the client's connect timeout.
func newBlackhole() (*rawSocket, error) {
	s, err := newRawSocket()
	if err != nil {
		return nil, err
	}
	if err := syscall.Listen(s.fd, 0); err != nil {
		s.close()
		return nil, fmt.Errorf("testserver: listen: %w", err)
	}
	// Linux queues backlog+1 connections; other systems may differ, so
	// dial until one does not complete (at most a few).
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
		if err != nil {
			return s, nil
		}
		s.held = append(s.held, c)
	}
	s.close()
	return nil, fmt.Errorf("testserver: the blackhole's accept queue did not fill up")
}

func (s *rawSocket) close() {
	if s == nil {
		return
	}
	for _, c := range s.held {
		c.Close()
	}
	s.held = nil
	if s.fd >= 0 {
		syscall.Close(s.fd)
		s.fd = -1
	}
}
