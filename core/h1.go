package core

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"time"
)

// h1Transport is the transport of the routes with nothing between client
// and server over HTTP/1.1: http:// without a proxy. A request without a
// body makes its round trip on the caller's goroutine, with net/http's
// own request writer (Request.Write) and response reader
// (http.ReadResponse), over a connection of the backend (its budget, DNS
// cache and timings) that it holds alone until its body is read.
// http.Transport hands every request to two goroutines of its connection
// and back, which costs markedly more CPU (tests/bench/README.md).
//
// A request with a body goes to http.Transport (full), which sends the
// body while it reads the answer -- a server may answer before it has
// read all of it -- and waits for 100-continue; so does an https
// request, which is the next hop of a redirect (http.Client sends every
// hop to the first one's round tripper).
//
// A connection goes back to the host's idle list once its response body
// is read to the end and neither side asked to close; a body closed
// before its end, a cancelled context or an error closes it.
type h1Transport struct {
	full    http.RoundTripper
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle int // idle connections kept per host

	mu        sync.Mutex
	idle      map[string][]*h1Conn // by host:port, the latest last; no entry for a host with none
	lastSweep time.Time
}

// h1IdleTimeout is how long an idle connection is kept, as the engine's
// http.Transport keeps them (IdleConnTimeout).
const h1IdleTimeout = 90 * time.Second

// h1MaxHeaderBytes bounds a response's header, 1xx responses included,
// as http.Transport's default MaxResponseHeaderBytes does.
const h1MaxHeaderBytes = 10 << 20

// h1Max1xx bounds the informational responses before the final one.
const h1Max1xx = 5

// h1PeekAfter is how long a connection stays idle before its reuse asks
// the kernel whether the server closed it or sent anything meanwhile (a
// system call per reuse otherwise). Servers close idle connections after
// seconds; one taken back sooner is used as is: bytes that came with the
// last answer are seen in the reader's buffer, and if the server did
// close it, a replayable request goes again on another (see RoundTrip).
const h1PeekAfter = time.Millisecond

func newH1Transport(full http.RoundTripper, dial func(ctx context.Context, network, addr string) (net.Conn, error), maxIdle int) *h1Transport {
	return &h1Transport{full: full, dial: dial, maxIdle: maxIdle, idle: map[string][]*h1Conn{}}
}

// h1Conn is a connection of an h1Transport.
type h1Conn struct {
	conn   net.Conn
	br     *bufio.Reader // reads through the h1Conn (see Read)
	bw     *bufio.Writer
	addr   string
	reused bool      // it carried a request before
	idleAt time.Time // when it went idle
	// headerLeft is what the response header may still take; < 0 while
	// a body is read.
	headerLeft int64
}

// Read feeds br, within headerLeft while a header is read.
func (c *h1Conn) Read(p []byte) (int, error) {
	if c.headerLeft >= 0 {
		if c.headerLeft == 0 {
			return 0, fmt.Errorf("the response header is larger than %d bytes", h1MaxHeaderBytes)
		}
		p = p[:min(int64(len(p)), c.headerLeft)]
	}
	n, err := c.conn.Read(p)
	if c.headerLeft >= 0 {
		c.headerLeft -= int64(n)
	}
	return n, err
}

func (t *h1Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody || req.URL.Scheme != "http" {
		return t.full.RoundTrip(req) // (https: a redirect's next hop)
	}
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	addr := canonicalAddr(req.URL)
	for {
		c, err := t.conn(ctx, addr, trace)
		if err != nil {
			return nil, err
		}
		resp, stale, err := t.roundTrip(ctx, c, req, trace)
		// A reused connection the server closed as the request went out
		// (it keeps idle connections for less time than we do) answered
		// nothing: the request goes again on another, as http.Transport
		// does it, when it may be replayed.
		if err == nil || !stale || ctx.Err() != nil || !replayable(req) {
			return resp, err
		}
	}
}

// roundTrip sends req over c and reads the answer's header; the body is
// read through the response. c is closed unless the response holds it.
// stale: c was reused and failed before any byte of an answer came.
func (t *h1Transport) roundTrip(ctx context.Context, c *h1Conn, req *http.Request, trace *httptrace.ClientTrace) (_ *http.Response, stale bool, _ error) {
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	fail := func(err error, answered bool) (*http.Response, bool, error) {
		stop()
		c.conn.Close()
		return nil, c.reused && !answered, err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(err, false)
	}
	if err := c.bw.Flush(); err != nil {
		return fail(err, false)
	}
	c.headerLeft = h1MaxHeaderBytes
	if _, err := c.br.Peek(1); err != nil {
		return fail(err, false)
	}
	if trace != nil && trace.GotFirstResponseByte != nil {
		trace.GotFirstResponseByte()
	}
	var resp *http.Response
	for n := 0; ; n++ {
		var err error
		if resp, err = http.ReadResponse(c.br, req); err != nil {
			return fail(err, true)
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			break
		}
		if n == h1Max1xx {
			return fail(errors.New("too many 1xx informational responses"), true)
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, nil); err != nil {
				return fail(err, true)
			}
		}
	}
	c.headerLeft = -1
	keep := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols
	if resp.Body == http.NoBody {
		t.release(c, stop(), keep)
		return resp, false, nil
	}
	resp.Body = &h1Body{rc: resp.Body, t: t, c: c, stop: stop, keep: keep}
	return resp, false, nil
}

// conn is an idle connection to addr that is still open and silent (as
// far as a connection idle for less than h1PeekAfter is asked), or a new
// one.
func (t *h1Transport) conn(ctx context.Context, addr string, trace *httptrace.ClientTrace) (*h1Conn, error) {
	for {
		now := time.Now()
		c := t.takeIdle(addr, now)
		if c == nil {
			break
		}
		if c.br.Buffered() == 0 && (now.Sub(c.idleAt) < h1PeekAfter || connSilent(c.conn)) {
			if trace != nil && trace.GotConn != nil {
				trace.GotConn(httptrace.GotConnInfo{Conn: c.conn, Reused: true, WasIdle: true, IdleTime: time.Since(c.idleAt)})
			}
			return c, nil
		}
		c.conn.Close() // closed by the server, or it sent what nobody asked for
	}
	if trace != nil && trace.GetConn != nil {
		trace.GetConn(addr)
	}
	conn, err := t.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &h1Conn{conn: conn, addr: addr, headerLeft: -1}
	c.br = bufio.NewReaderSize(c, 4096)
	c.bw = bufio.NewWriterSize(conn, 4096)
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: conn})
	}
	return c, nil
}

// takeIdle takes addr's latest idle connection, closing those idle for
// longer than h1IdleTimeout.
func (t *h1Transport) takeIdle(addr string, now time.Time) *h1Conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.idle[addr]
	for len(list) > 0 {
		c := list[len(list)-1]
		list[len(list)-1] = nil
		list = list[:len(list)-1]
		if now.Sub(c.idleAt) < h1IdleTimeout {
			t.setIdle(addr, list)
			return c
		}
		c.conn.Close()
	}
	t.setIdle(addr, list)
	return nil
}

// setIdle stores addr's idle list; the caller holds t.mu.
func (t *h1Transport) setIdle(addr string, list []*h1Conn) {
	if len(list) == 0 {
		delete(t.idle, addr)
	} else {
		t.idle[addr] = list
	}
}

// release ends c's request: c goes idle when keep holds and its
// cancellation hook had not fired (stopped), else it is closed.
func (t *h1Transport) release(c *h1Conn, stopped, keep bool) {
	if !stopped || !keep {
		c.conn.Close()
		return
	}
	now := time.Now()
	c.reused, c.idleAt = true, now
	t.mu.Lock()
	if now.Sub(t.lastSweep) >= h1IdleTimeout/2 {
		t.lastSweep = now
		t.sweep(now)
	}
	list := t.idle[c.addr]
	if len(list) >= t.maxIdle {
		t.mu.Unlock()
		c.conn.Close()
		return
	}
	t.idle[c.addr] = append(list, c)
	t.mu.Unlock()
}

// sweep closes the connections idle for longer than h1IdleTimeout; the
// caller holds t.mu.
func (t *h1Transport) sweep(now time.Time) {
	for addr, list := range t.idle {
		kept := list[:0]
		for _, c := range list {
			if now.Sub(c.idleAt) < h1IdleTimeout {
				kept = append(kept, c)
			} else {
				c.conn.Close()
			}
		}
		clear(list[len(kept):])
		t.setIdle(addr, kept)
	}
}

// CloseIdleConnections closes every idle connection, those of requests
// with a body included.
func (t *h1Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = map[string][]*h1Conn{}
	t.mu.Unlock()
	for _, list := range idle {
		for _, c := range list {
			c.conn.Close()
		}
	}
	if c, ok := t.full.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// h1Body is a response body that holds its connection: read to its end,
// it gives the connection back; closed before, it closes it.
type h1Body struct {
	rc   io.ReadCloser
	t    *h1Transport
	c    *h1Conn
	stop func() bool
	keep bool
	done bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.done = true
		b.t.release(b.c, b.stop(), b.keep)
	case err != nil:
		b.done = true
		b.stop()
		b.c.conn.Close()
	}
	return n, err
}

func (b *h1Body) Close() error {
	if !b.done {
		b.done = true
		b.stop()
		b.c.conn.Close()
	}
	return nil
}

// canonicalAddr is u's host:port, the port defaulting to the scheme's.
func canonicalAddr(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
