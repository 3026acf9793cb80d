package core

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawServer is an HTTP/1.1 server on loopback written byte by byte:
// serve gets each connection with its reader and the connection's number
// (from 1) and answers as the test likes. Its listener is open before
// newRawServer returns, and the accept loop starts after s is made.
type rawServer struct {
	url      string
	accepted atomic.Int64
	requests atomic.Int64
}

func newRawServer(t *testing.T, serve func(s *rawServer, n int64, c net.Conn, br *bufio.Reader)) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{url: "http://" + l.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			n := s.accepted.Add(1)
			wg.Go(func() {
				defer c.Close()
				serve(s, n, c, bufio.NewReader(c))
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// readRequest reads one request (without a body) from br; false at EOF.
func (s *rawServer) readRequest(br *bufio.Reader) bool {
	req, err := http.ReadRequest(br)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, req.Body)
	s.requests.Add(1)
	return true
}

func answer(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// A connection the server closed while it was idle is never used again:
// the next request gets a new one and succeeds, a POST too (which could
// not go again had it been sent on the closed one).
func TestH1IdleConnectionClosedByTheServer(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, n int64, c net.Conn, br *bufio.Reader) {
		if s.readRequest(br) {
			io.WriteString(c, answer(fmt.Sprint(n)))
		}
		// and close: an idle timeout shorter than the client's
	})
	c := newTestClient(t, nil)
	for i := 1; i <= 3; i++ {
		res := doReq(t, c, RequestConfig{URL: s.url + "/", Method: "POST"})
		mustOK(t, res)
		if string(res.Content) != fmt.Sprint(i) || res.Timings.Reused {
			t.Fatalf("request %d: body %q (connection number), reused %v; want a new connection each time", i, res.Content, res.Timings.Reused)
		}
		if n := s.requests.Load(); n != int64(i) {
			t.Fatalf("the server read %d requests for %d", n, i)
		}
		time.Sleep(20 * time.Millisecond) // the close reaches the client
	}
}

// A server that closes a kept-alive connection as the next request
// arrives, without an answer: a GET goes again on a new connection, once;
// a POST, which may have been acted on, is not replayed.
func TestH1StaleConnectionRetriesReplayableRequestsOnly(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, n int64, c net.Conn, br *bufio.Reader) {
		if s.readRequest(br) {
			io.WriteString(c, answer(fmt.Sprint(n)))
		}
		s.readRequest(br) // a second request on this connection: no answer
	})
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 1 })
	mustOK(t, doReq(t, c, RequestConfig{URL: s.url + "/"}))
	res := doReq(t, c, RequestConfig{URL: s.url + "/"})
	mustOK(t, res)
	if string(res.Content) != "2" || res.Attempts != 1 || s.requests.Load() != 3 {
		t.Fatalf("GET after a stale connection: body %q, %d attempts, %d requests read; want connection 2's answer "+
			"in one attempt, the GET read twice", res.Content, res.Attempts, s.requests.Load())
	}
	before := s.requests.Load()
	res = doReq(t, c, RequestConfig{URL: s.url + "/", Method: "POST"})
	if res.Error == nil {
		t.Fatalf("POST on a connection closed without an answer succeeded: %q", res.Content)
	}
	if n := s.requests.Load() - before; n != 1 {
		t.Errorf("the POST reached the server %d times, want once", n)
	}
}

// Bytes a server sends after its answer are never read as the next
// answer: the connection is dropped.
func TestH1UnsolicitedBytesDropTheConnection(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, n int64, c net.Conn, br *bufio.Reader) {
		for s.readRequest(br) {
			io.WriteString(c, answer(fmt.Sprint(n))+answer("smuggled"))
		}
	})
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 1 })
	for i := 1; i <= 3; i++ {
		res := doReq(t, c, RequestConfig{URL: s.url + "/"})
		mustOK(t, res)
		if string(res.Content) != fmt.Sprint(i) {
			t.Fatalf("request %d read %q, want the answer of connection %d", i, res.Content, i)
		}
		time.Sleep(10 * time.Millisecond) // the extra answer arrives
	}
}

// Informational answers before the final one are skipped, up to a bound.
func TestH1InformationalResponses(t *testing.T) {
	var hints atomic.Int64
	hints.Store(1)
	s := newRawServer(t, func(s *rawServer, n int64, c net.Conn, br *bufio.Reader) {
		for s.readRequest(br) {
			io.WriteString(c, strings.Repeat("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", int(hints.Load()))+answer("final"))
		}
	})
	c := newTestClient(t, nil)
	res := doReq(t, c, RequestConfig{URL: s.url + "/"})
	mustOK(t, res)
	if string(res.Content) != "final" {
		t.Fatalf("after a 103: %q", res.Content)
	}
	hints.Store(6)
	c2 := newTestClient(t, nil)
	res = doReq(t, c2, RequestConfig{URL: s.url + "/"})
	if res.Error == nil || !strings.Contains(res.Error.Message, "1xx") {
		t.Fatalf("6 informational answers: %+v, want an error", res.Error)
	}
}

// A header that never ends stops at the header bound with an error.
func TestH1EndlessHeaderIsAnError(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, n int64, c net.Conn, br *bufio.Reader) {
		if !s.readRequest(br) {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Endless: ")
		chunk := strings.Repeat("a", 64<<10)
		for {
			if _, err := io.WriteString(c, chunk); err != nil {
				return
			}
		}
	})
	c := newTestClient(t, nil)
	res := doReq(t, c, RequestConfig{URL: s.url + "/", Timeout: 20})
	if res.Error == nil || res.Error.Kind != KindTransport || !strings.Contains(res.Error.Message, "header") {
		t.Fatalf("endless header: %+v, want a transport error about the header", res.Error)
	}
}

// A body closed before its end closes its connection, which is not used
// again; a body read to its end gives it back.
func TestH1BodyClosedEarlyClosesItsConnection(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	s := newRawServer(t, func(s *rawServer, n int64, c net.Conn, br *bufio.Reader) {
		for s.readRequest(br) {
			if _, err := io.WriteString(c, answer(big)); err != nil {
				return
			}
		}
	})
	c := newTestClient(t, nil)
	rt := c.backend.RoundTripper(Route{Plain: true, Protocol: ProtocolAuto, VerifySSL: true})
	get := func() *http.Response {
		req, _ := http.NewRequestWithContext(testCtx(t), "GET", s.url+"/", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := get()
	io.ReadFull(resp.Body, make([]byte, 10))
	resp.Body.Close()
	resp = get()
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("%d connections after a body closed early, want 2", n)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || len(b) != len(big) {
		t.Fatalf("read %d bytes, error %v", len(b), err)
	}
	resp.Body.Close()
	resp = get()
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := s.accepted.Load(); n != 2 {
		t.Errorf("%d connections after a body read to its end, want it reused (2)", n)
	}
}

// A server that stops in the middle of a body: the attempt's timeout
// ends it, and its connection (and budget token) goes.
func TestH1TimeoutMidBody(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, n int64, c net.Conn, br *bufio.Reader) {
		if s.readRequest(br) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
			br.ReadByte() // until the client goes
		}
	})
	c := newTestClient(t, nil)
	start := time.Now()
	res := doReq(t, c, RequestConfig{URL: s.url + "/", Timeout: 0.3})
	if res.Error == nil || res.Error.Kind != KindTimeout {
		t.Fatalf("a stalled body: %+v, want a timeout", res.Error)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v with timeout 0.3 s", d)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(c.backend.conns.budget) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(c.backend.conns.budget); n != 0 {
		t.Errorf("%d connection tokens held after the timeout", n)
	}
}

// A redirect from http:// to https:// goes over TLS: every hop goes to
// the first one's round tripper.
func TestH1RedirectToHTTPS(t *testing.T) {
	c := newTestClient(t, func(c *ClientConfig) { c.VerifySSL = ptr(true); c.CAFile = ts.CAFile })
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/redirect-to?url=" + url.QueryEscape(ts.TLSURL+"/get")})
	mustOK(t, res)
	if !strings.HasPrefix(res.URL, ts.TLSURL) || res.HTTPVersion != "HTTP/2.0" {
		t.Fatalf("ended at %s over %s, want %s over HTTP/2", res.URL, res.HTTPVersion, ts.TLSURL)
	}
}

// An internationalized host name is dialled as the Host header names it,
// in punycode.
func TestH1InternationalizedHost(t *testing.T) {
	u, err := url.Parse(ts.HTTPURL)
	if err != nil {
		t.Fatal(err)
	}
	dns := startDNSServer(t, map[string][]netip.Addr{"xn--bcher-kva.fastreq.test": {netip.MustParseAddr(u.Hostname())}})
	c := dnsTestClient(t, dns, nil)
	res := doReq(t, c, RequestConfig{URL: "http://bücher.fastreq.test:" + u.Port() + "/x/json"})
	mustOK(t, res)
	if n := dns.count("xn--bcher-kva.fastreq.test"); n != 1 {
		t.Errorf("the punycode name was looked up %d times, want once", n)
	}
}

// A failure says which step of the exchange it ended: a bare "EOF" or
// "unexpected EOF" does not tell a server that hung up from one that cut
// its answer short.
func TestH1ErrorsNameTheStep(t *testing.T) {
	s := newRawServer(t, func(s *rawServer, n int64, c net.Conn, br *bufio.Reader) {
		if !s.readRequest(br) {
			return
		}
		switch n {
		case 1: // hangs up without a word
		case 2:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n") // and no end of the header
		default:
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
		}
	})
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 1; c.MaxRetries = 0 })
	for i, want := range []string{
		"transport: the server closed the connection without answering: EOF",
		"transport: reading the response header: unexpected EOF",
		"transport: reading the response body: unexpected EOF",
	} {
		e := wantKind(t, doReq(t, c, RequestConfig{URL: s.url + "/", Method: "POST"}), KindTransport)
		if e.Message != want {
			t.Errorf("connection %d: %q, want %q", i+1, e.Message, want)
		}
	}
}
