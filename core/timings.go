package core

import (
	"context"
	"net"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// Timings says where the time of a request's last attempt went. DNS,
// Connect and TLS are those of the connections the attempt opened (more
// than one only when it followed redirects): all three are 0 when it
// reused a connection.
type Timings struct {
	// DNS is the host name lookup; 0 for an IP address, next to nothing
	// for an answer from the client's DNS cache. Through a proxy, the
	// proxy's name.
	DNS time.Duration `json:"dns_ns"`
	// Connect is the TCP connect (every address tried); through a proxy,
	// to the proxy.
	Connect time.Duration `json:"connect_ns"`
	// TLS is from the TCP connection to the connection being ready for
	// requests: the TLS handshake (through an HTTP proxy, the CONNECT
	// exchange before it too). 0 for http:// without TLS.
	TLS time.Duration `json:"tls_ns"`
	// TTFB is from the attempt's start to the first byte of the final
	// response (connection setup and the request's upload included); 0
	// when no response arrived.
	TTFB time.Duration `json:"ttfb_ns"`
	// Total is the attempt from its start to its end, body included.
	Total time.Duration `json:"total_ns"`
	// Reused reports whether the final response came over a connection
	// that had carried a request before (an idle one from the pool, or
	// for HTTP/2 a connection shared with other requests).
	Reused bool `json:"reused"`
}

// attemptTrace is one attempt's trace: its httptrace hooks, method values
// bound to it, and the times they note. Its attempt's context answers it
// for traceKey (attemptCtx.Value), so the dialer finds it without a
// context value of its own. Hooks may run after the attempt ended and on
// other goroutines: every field they write is atomic.
type attemptTrace struct {
	hooks httptrace.ClientTrace
	begin time.Time
	// holdsHooks: the attempt's context answers for its httptrace hooks
	// (else a context value over it holds them: see start).
	holdsHooks bool

	sent      atomic.Bool  // the request's headers went out (hooked only where it decides a retry)
	reused    atomic.Bool  // of the latest connection
	firstByte atomic.Int64 // since start, of the latest response; 0: none yet
	dns       atomic.Int64 // summed over the fresh connections the attempt got
	connect   atomic.Int64
	tls       atomic.Int64
	// dialed is the last connection dialled for this attempt, for a
	// connection the hooks cannot unwrap to its dialled one (a SOCKS5
	// tunnel).
	dialed atomic.Pointer[timedConn]
}

// traceKey finds an attempt's trace in its context (see attemptCtx.Value).
type traceKey struct{}

// clientTraceKey is httptrace's (unexported) context key of a
// ClientTrace, caught from WithClientTrace asking a parent for it: an
// attempt's context answers it with the attempt's hooks, so that no
// context value is allocated per attempt. nil when the key caught is not
// the one httptrace.ContextClientTrace reads (then each attempt calls
// WithClientTrace): the hooks must reach the transport, or a request
// whose headers went out would look unsent (see attempt's retry rule).
var clientTraceKey = func() any {
	var k keyCatcher
	k.Context = context.Background()
	httptrace.WithClientTrace(&k, &httptrace.ClientTrace{})
	if k.key == nil {
		return nil
	}
	hooks := &httptrace.ClientTrace{}
	if httptrace.ContextClientTrace(context.WithValue(context.Background(), k.key, hooks)) != hooks {
		return nil
	}
	return k.key
}()

type keyCatcher struct {
	context.Context
	key any
}

func (k *keyCatcher) Value(key any) any {
	if k.key == nil {
		k.key = key
	}
	return nil
}

// start starts the zero trace of a, begun at begin, and returns the
// context of a's requests. withSent also notes when the request's headers
// went out.
func (t *attemptTrace) start(a *attemptCtx, begin time.Time, withSent bool) context.Context {
	t.begin = begin
	t.hooks.GotConn = t.gotConn
	t.hooks.GotFirstResponseByte = t.gotFirstByte
	if withSent {
		t.hooks.WroteHeaders = t.wroteHeaders
	}
	if clientTraceKey == nil {
		return httptrace.WithClientTrace(a, &t.hooks) // a cannot answer for them
	}
	if httptrace.ContextClientTrace(a.parent) != nil {
		// The caller's context has hooks of its own: WithClientTrace
		// composes them into ours. The context it returns is not needed:
		// a answers for the composed hooks, and the hooks of the net
		// package (DNS, connect) are the caller's alone, already in its
		// context.
		httptrace.WithClientTrace(a.parent, &t.hooks)
	}
	t.holdsHooks = true
	return a
}

// traceOf is the attempt trace in ctx, or nil.
func traceOf(ctx context.Context) *attemptTrace {
	t, _ := ctx.Value(traceKey{}).(*attemptTrace)
	return t
}

func (t *attemptTrace) wroteHeaders() { t.sent.Store(true) }

func (t *attemptTrace) gotFirstByte() { t.firstByte.Store(max(int64(time.Since(t.begin)), 1)) }

// gotConn notes whether the connection is reused and, for a fresh one,
// how long it took to make.
func (t *attemptTrace) gotConn(info httptrace.GotConnInfo) {
	t.reused.Store(info.Reused)
	if info.Reused {
		return
	}
	tc, wrapped := dialedOf(info.Conn)
	if tc == nil {
		tc = t.dialed.Load()
	}
	if tc == nil {
		return
	}
	t.dns.Add(int64(tc.dns))
	t.connect.Add(int64(tc.connect))
	if wrapped {
		t.tls.Add(int64(time.Since(tc.ready)))
	}
}

// timings are the attempt's figures, its total ending now.
func (t *attemptTrace) timings(now time.Time) Timings {
	return Timings{
		DNS:     time.Duration(t.dns.Load()),
		Connect: time.Duration(t.connect.Load()),
		TLS:     time.Duration(t.tls.Load()),
		TTFB:    time.Duration(t.firstByte.Load()),
		Total:   now.Sub(t.begin),
		Reused:  t.reused.Load(),
	}
}

// timedConn is a dialled connection and what making it took.
type timedConn struct {
	net.Conn
	dns     time.Duration // the name lookup
	connect time.Duration // the TCP connect
	ready   time.Time     // when the TCP connection was up
}

// dialedOf finds the connection the backend dialled under c, which the
// transport may have wrapped (TLS: then wrapped is true). nil when a
// wrapper hides it.
func dialedOf(c net.Conn) (tc *timedConn, wrapped bool) {
	for c != nil {
		switch v := c.(type) {
		case *timedConn:
			return v, wrapped
		case *trackedConn:
			c = v.Conn
		case interface{ NetConn() net.Conn }: // *tls.Conn and its look-alikes
			c, wrapped = v.NetConn(), true
		default:
			return nil, wrapped
		}
	}
	return nil, wrapped
}
