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
	"net/textproto"
	"net/url"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/idna"
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
// before its end, a cancelled context or an error closes it. Idle
// connections are closed after h1IdleTimeout.
type h1Transport struct {
	full    http.RoundTripper
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle int // idle connections kept per host

	mu    sync.Mutex
	idle  map[string][]*h1Conn // by host:port, the latest last; no entry for a host with none
	sweep *time.Timer          // runs while connections are idle
}

// h1IdleTimeout is how long an idle connection is kept, as the engine's
// http.Transport keeps them (IdleConnTimeout).
const h1IdleTimeout = 90 * time.Second

// h1MaxHeaderBytes bounds a response's header, 1xx responses included,
// as http.Transport's default MaxResponseHeaderBytes does.
const h1MaxHeaderBytes = 10 << 20

// h1Max1xx bounds the informational responses before the final one.
const h1Max1xx = 5

// h1PeekAfter: reusing a connection asks the kernel whether the server
// closed it or sent anything while it was idle (a system call), unless
// its last answer had a body, delimited and read to its end, less than
// h1PeekAfter ago. Servers close idle connections after seconds; bytes
// that came with the last answer are seen in the reader's buffer; if the
// server did close it, a replayable request goes again on another (see
// RoundTrip). An answer without a body (HEAD, 204, 304) is always
// followed by the peek: a server that sends a body there anyway sends it
// after the answer.
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
	// bodied: its last answer had a body, read to its end.
	bodied bool
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
	if err := ctx.Err(); err != nil {
		return nil, err
	}
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
// stale: c was reused and its connection failed before any byte of an
// answer came.
func (t *h1Transport) roundTrip(ctx context.Context, c *h1Conn, req *http.Request, trace *httptrace.ClientTrace) (_ *http.Response, stale bool, _ error) {
	watch := watchConn(ctx, c.conn)
	fail := func(err error, answered bool) (*http.Response, bool, error) {
		watch.end()
		c.conn.Close()
		return nil, c.reused && !answered && connError(err), err
	}
	if err := req.Write(c.bw); err != nil {
		return fail(&h1Error{"sending the request", err}, false)
	}
	if err := c.bw.Flush(); err != nil {
		return fail(&h1Error{"sending the request", err}, false)
	}
	c.headerLeft = h1MaxHeaderBytes
	if _, err := c.br.Peek(1); err != nil {
		step := "waiting for the response"
		if err == io.EOF {
			step = "the server closed the connection without answering"
		}
		return fail(&h1Error{step, err}, false)
	}
	if trace != nil && trace.GotFirstResponseByte != nil {
		trace.GotFirstResponseByte()
	}
	var resp *http.Response
	for n := 0; ; n++ {
		var err error
		if resp, err = http.ReadResponse(c.br, req); err != nil {
			return fail(&h1Error{"reading the response header", err}, true)
		}
		code := resp.StatusCode
		if code < 100 || code > 199 || code == http.StatusSwitchingProtocols {
			break
		}
		if n == h1Max1xx {
			return fail(errors.New("too many 1xx informational responses"), true)
		}
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(code, textproto.MIMEHeader(resp.Header)); err != nil {
				return fail(err, true)
			}
		}
	}
	c.headerLeft = -1
	keep := !resp.Close && !req.Close && resp.StatusCode != http.StatusSwitchingProtocols &&
		!httpguts.HeaderValuesContainsToken(req.Header["Connection"], "close")
	c.bodied = resp.Body != http.NoBody
	if !c.bodied {
		t.release(c, watch.end(), keep)
		return resp, false, nil
	}
	resp.Body = &h1Body{rc: resp.Body, t: t, c: c, watch: watch, keep: keep}
	return resp, false, nil
}

// conn is an idle connection to addr that is still open and silent (as
// far as h1PeekAfter has it asked), or a new one.
func (t *h1Transport) conn(ctx context.Context, addr string, trace *httptrace.ClientTrace) (*h1Conn, error) {
	for {
		now := time.Now()
		c := t.takeIdle(addr, now)
		if c == nil {
			break
		}
		if c.br.Buffered() == 0 && (c.bodied && now.Sub(c.idleAt) < h1PeekAfter || connSilent(c.conn)) {
			if trace != nil && trace.GotConn != nil {
				trace.GotConn(httptrace.GotConnInfo{Conn: c.conn, Reused: true, WasIdle: true, IdleTime: now.Sub(c.idleAt)})
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
// cancellation had not reached it (stopped), else it is closed.
func (t *h1Transport) release(c *h1Conn, stopped, keep bool) {
	if !stopped || !keep {
		c.conn.Close()
		return
	}
	c.reused, c.idleAt = true, time.Now()
	t.mu.Lock()
	list := t.idle[c.addr]
	if len(list) >= t.maxIdle {
		t.mu.Unlock()
		c.conn.Close()
		return
	}
	t.idle[c.addr] = append(list, c)
	if t.sweep == nil {
		t.sweep = time.AfterFunc(h1IdleTimeout, t.closeExpired)
	}
	t.mu.Unlock()
}

// closeExpired closes the connections idle for h1IdleTimeout, and runs
// again while some are idle.
func (t *h1Transport) closeExpired() {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	next := h1IdleTimeout
	for addr, list := range t.idle {
		kept := list[:0]
		for _, c := range list {
			if idle := now.Sub(c.idleAt); idle < h1IdleTimeout {
				kept = append(kept, c)
				next = min(next, h1IdleTimeout-idle)
			} else {
				c.conn.Close()
			}
		}
		clear(list[len(kept):])
		t.setIdle(addr, kept)
	}
	if len(t.idle) == 0 {
		t.sweep = nil
		return
	}
	t.sweep.Reset(next)
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
	rc    io.ReadCloser
	t     *h1Transport
	c     *h1Conn
	watch connWatch
	keep  bool
	end   error // what ended it: io.EOF, the read's error, or http.ErrBodyReadAfterClose
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.end != nil {
		return 0, b.end
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.end = err
		b.t.release(b.c, b.watch.end(), b.keep)
	case err != nil:
		err = &h1Error{"reading the response body", err}
		b.end = err
		b.watch.end()
		b.c.conn.Close()
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.end == nil {
		b.watch.end()
		b.c.conn.Close()
	}
	if b.end != io.EOF {
		b.end = http.ErrBodyReadAfterClose
	}
	return nil
}

// h1Error is a step of an exchange that failed, around the connection's
// or the parser's error (which errors.Is and errors.As still find): the
// step says what a bare "EOF" or "unexpected EOF" would not.
type h1Error struct {
	step string
	err  error
}

func (e *h1Error) Error() string { return e.step + ": " + e.err.Error() }
func (e *h1Error) Unwrap() error { return e.err }

// connError reports whether err came from the connection (what a stale
// one gives: a reset, an end, an error of the network), not from the
// request itself.
func connError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// canonicalAddr is the host:port to dial for an http:// URL, the host in
// ASCII (an internationalized name as punycode, as the Host header
// carries it) and the port the origin's.
func canonicalAddr(u *url.URL) string {
	return net.JoinHostPort(asciiHost(u.Hostname()), originPort(u))
}

// asciiHost is host with an internationalized name in punycode; host as
// it is when it is ASCII already or is no valid name.
func asciiHost(host string) string {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			if a, err := idna.Lookup.ToASCII(host); err == nil {
				return a
			}
			return host
		}
	}
	return host
}
