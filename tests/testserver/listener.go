package testserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
)

// connTracker remembers every live connection the servers accepted or the
// proxies dialed. http.Server.Close does not touch hijacked connections
// (CONNECT tunnels, SOCKS5 streams), so Close needs this list to end them.
type connTracker struct {
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newConnTracker() *connTracker {
	return &connTracker{conns: make(map[*trackedConn]struct{})}
}

// wrap registers c; once the tracker is closed it closes c instead.
func (t *connTracker) wrap(c net.Conn) (*trackedConn, bool) {
	tc := &trackedConn{Conn: c, t: t}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return nil, false
	}
	t.conns[tc] = struct{}{}
	return tc, true
}

func (t *connTracker) forget(tc *trackedConn) {
	t.mu.Lock()
	delete(t.conns, tc)
	t.mu.Unlock()
}

// closeAll closes every tracked connection and refuses new ones.
func (t *connTracker) closeAll() {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = make(map[*trackedConn]struct{})
	t.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// listener wraps l so that accepted connections are tracked.
func (t *connTracker) listener(l net.Listener) net.Listener {
	return &trackedListener{Listener: l, t: t}
}

// dial opens a tracked outbound connection for the proxies. Only loopback
// destinations are allowed, so a misdirected test cannot push traffic off
// the machine through them.
func (t *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("testserver: proxies only connect to loopback, not %s", addr)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc, ok := t.wrap(c)
	if !ok {
		return nil, net.ErrClosed
	}
	return tc, nil
}

type trackedListener struct {
	net.Listener
	t *connTracker
}

func (l *trackedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc, ok := l.t.wrap(c); ok {
			return tc, nil
		}
	}
}

// trackedConn drops itself from the tracker on Close. It keeps the
// half-close methods of *net.TCPConn visible because both proxies use them
// to forward EOF through tunnels.
type trackedConn struct {
	net.Conn
	t *connTracker
}

func (c *trackedConn) Close() error {
	c.t.forget(c)
	return c.Conn.Close()
}

func (c *trackedConn) CloseWrite() error {
	if hc, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return hc.CloseWrite()
	}
	return nil
}

func (c *trackedConn) CloseRead() error {
	if hc, ok := c.Conn.(interface{ CloseRead() error }); ok {
		return hc.CloseRead()
	}
	return nil
}

// tcpConn digs the *net.TCPConn out of the wrappers a handler may see.
func tcpConn(c net.Conn) *net.TCPConn {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case *tls.Conn:
			c = v.NetConn()
		case *trackedConn:
			c = v.Conn
		case *countedConn:
			c = v.Conn
		default:
			return nil
		}
	}
}
