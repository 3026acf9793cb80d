package testserver

import (
	"context"
	"net"
	"sync/atomic"
	"syscall"
)

// LoopbackListener serves every loopback address (127.X.Y.Z) on one port
// and nothing else: it listens on the IPv4 wildcard, tied to the loopback
// interface where the kernel allows it (Bound), and closes at once any
// connection whose either end is not loopback (Rejected counts them).
// OnAccept, when set, may wrap each connection it lets through.
type LoopbackListener struct {
	net.Listener
	Bound    bool
	Rejected atomic.Int64
	OnAccept func(net.Conn) net.Conn
}

// ListenLoopbackHosts listens on addr ("0.0.0.0:port", port 0 for any).
func ListenLoopbackHosts(addr string) (*LoopbackListener, error) {
	l := &LoopbackListener{}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			l.Bound = bindToLoopback(fd)
		})
	}}
	inner, err := lc.Listen(context.Background(), "tcp4", addr)
	if err != nil {
		return nil, err
	}
	l.Listener = inner
	return l, nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Accept returns the next loopback connection.
func (l *LoopbackListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !isLoopback(c.RemoteAddr()) || !isLoopback(c.LocalAddr()) {
			l.Rejected.Add(1)
			c.Close()
			continue
		}
		if l.OnAccept != nil {
			c = l.OnAccept(c)
		}
		return c, nil
	}
}
