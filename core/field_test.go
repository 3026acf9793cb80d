package core

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// Tests of what servers that misbehave, or many hosts at once, must not do
// to a client: leak credentials, exhaust descriptors or memory, replay
// requests, or stall it.

// headerEcho is a server answering with the request headers it received.
func headerEcho(t *testing.T, addr string) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := map[string]string{"Host": r.Host}
		for k, v := range r.Header {
			h[k] = strings.Join(v, ", ")
		}
		h["RequestURI"] = r.RequestURI
		json.NewEncoder(w).Encode(h)
	}))
	if addr != "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("listen %s: %v", addr, err)
		}
		srv.Listener = l
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, srv.URL
}

// redirector answers every request with a 302 to target.
func redirector(t *testing.T, tls bool, target string) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target, http.StatusFound)
	})
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv.URL
}

func echoed(t *testing.T, res *NormalizedResponse) map[string]string {
	t.Helper()
	mustOK(t, res)
	var h map[string]string
	if err := json.Unmarshal(res.Content, &h); err != nil {
		t.Fatalf("echo body %q: %v", res.Content, err)
	}
	return h
}

func TestRedirectCredentialsStayOnTheirOrigin(t *testing.T) {
	_, echoURL := headerEcho(t, "")
	_, otherHostURL := headerEcho(t, "127.0.0.2:0")
	c := newTestClient(t, func(c *ClientConfig) {
		c.Headers = map[string]string{"Authorization": "Bearer client-level"}
	})
	secret := map[string]string{
		"Authorization":       "Bearer SECRET-TOKEN",
		"Proxy-Authorization": "Basic SECRET-PROXY",
		"Cookie":              "session=SECRET-COOKIE",
	}
	for _, tt := range []struct {
		name, from string
	}{
		{"another port", redirector(t, false, echoURL+"/x")},
		{"https to http", redirector(t, true, echoURL+"/x")},
		{"another host", redirector(t, false, otherHostURL+"/x")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := echoed(t, doReq(t, c, RequestConfig{URL: tt.from + "/start", Headers: secret, Cookies: map[string]string{"mine": "SECRET-REQ-COOKIE"}}))
			for k, v := range h {
				if strings.Contains(v, "SECRET") || strings.Contains(v, "client-level") {
					t.Errorf("%s: %s: %q reached the other origin", tt.name, k, v)
				}
			}
		})
	}
	t.Run("same origin keeps them", func(t *testing.T) {
		mux := http.NewServeMux()
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/end", http.StatusFound) })
		mux.HandleFunc("/end", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(r.Header) })
		res := doReq(t, c, RequestConfig{URL: srv.URL + "/start", Headers: secret})
		mustOK(t, res)
		var h http.Header
		json.Unmarshal(res.Content, &h)
		if h.Get("Authorization") != secret["Authorization"] || h.Get("Cookie") != secret["Cookie"] {
			t.Errorf("same-origin redirect lost the caller's credentials: %v", h)
		}
	})
}

func TestRedirectSendsNoReferer(t *testing.T) {
	_, echoURL := headerEcho(t, "127.0.0.2:0")
	c := newTestClient(t, nil)
	h := echoed(t, doReq(t, c, RequestConfig{URL: redirector(t, false, echoURL+"/x") + "/ref?api_key=SECRET"}))
	if ref, ok := h["Referer"]; ok {
		t.Errorf("the redirect target got Referer %q", ref)
	}
	// A Referer the caller set is theirs to send.
	h = echoed(t, doReq(t, c, RequestConfig{URL: redirector(t, false, echoURL+"/x"), Headers: map[string]string{"Referer": "https://mine.example/"}}))
	if h["Referer"] != "https://mine.example/" {
		t.Errorf("the caller's Referer became %q", h["Referer"])
	}
}

func TestHostHeaderFromClientAndRequest(t *testing.T) {
	_, echoURL := headerEcho(t, "")
	c := newTestClient(t, func(c *ClientConfig) { c.Headers = map[string]string{"host": "client.example"} })
	if h := echoed(t, doReq(t, c, RequestConfig{URL: echoURL})); h["Host"] != "client.example" {
		t.Errorf("client-level Host header: server saw %q", h["Host"])
	}
	if h := echoed(t, doReq(t, c, RequestConfig{URL: echoURL, Headers: map[string]string{"Host": "req.example"}})); h["Host"] != "req.example" {
		t.Errorf("request Host header: server saw %q", h["Host"])
	}
}

func TestQueryBytesARequestLineCannotCarryAreEscaped(t *testing.T) {
	_, echoURL := headerEcho(t, "")
	c := newTestClient(t, nil)
	for raw, want := range map[string]string{
		"/get?a b=c d":        "/get?a%20b=c%20d",
		`/q?x="<é>"&p=50%`:    "/q?x=%22%3C%C3%A9%3E%22&p=50%25",
		"/ok?a=%41&b=[1]&c=~": "/ok?a=%41&b=[1]&c=~",
	} {
		if h := echoed(t, doReq(t, c, RequestConfig{URL: echoURL + raw})); h["RequestURI"] != want {
			t.Errorf("%q went out as %q, want %q", raw, h["RequestURI"], want)
		}
	}
}

// multiHost serves one tiny response on the same port of n loopback
// addresses (127.0.1.1 ...), counting the connections it accepts.
type multiHost struct {
	port     int
	accepted atomic.Int64
}

func newMultiHost(t *testing.T, n int) *multiHost {
	t.Helper()
	m := &multiHost{}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				m.accepted.Add(1)
			}
		},
	}
	for i := 0; i < n; i++ {
		addr := fmt.Sprintf("127.0.1.%d:%d", 1+i, m.port)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Skipf("listen %s: %v", addr, err)
		}
		if m.port == 0 {
			m.port = l.Addr().(*net.TCPAddr).Port
		}
		go srv.Serve(l)
	}
	t.Cleanup(func() { srv.Close() })
	return m
}

func (m *multiHost) url(i int) string { return fmt.Sprintf("http://127.0.1.%d:%d/", 1+i, m.port) }

func TestSocketsBoundedWhateverTheHosts(t *testing.T) {
	const hosts, perHost, concurrency = 100, 5, 8
	m := newMultiHost(t, hosts)
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = concurrency })
	var batch []RequestConfig
	for round := 0; round < perHost; round++ {
		for h := 0; h < hosts; h++ {
			batch = append(batch, RequestConfig{URL: m.url(h)})
		}
	}
	b, err := c.Submit(testCtx(t), batch, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var maxHeld int
	for done := false; !done; {
		select {
		case <-b.Done():
			done = true
		case <-time.After(time.Millisecond):
		}
		c.backend.conns.mu.Lock()
		maxHeld = max(maxHeld, len(c.backend.conns.conns))
		c.backend.conns.mu.Unlock()
	}
	for _, res := range b.Wait() {
		mustOK(t, res)
	}
	if limit := concurrency + DefaultSpareConns; maxHeld > limit {
		t.Errorf("the client held %d connections at once, want at most %d", maxHeld, limit)
	}
	if got := m.accepted.Load(); got < hosts {
		t.Errorf("%d connections for %d hosts", got, hosts)
	}
}

// max_connections above the number of hosts: each host keeps its
// connection, so a second round over the hosts reuses every one, and the
// client still holds no more than max_connections.
func TestMaxConnectionsKeepsAConnectionPerHost(t *testing.T) {
	const hosts, concurrency = 100, 8
	m := newMultiHost(t, hosts)
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = concurrency; c.MaxConnections = hosts + concurrency })
	round := make([]RequestConfig, hosts)
	for h := range round {
		round[h] = RequestConfig{URL: m.url(h)}
	}
	for _, res := range doBatch(t, c, round) {
		mustOK(t, res)
	}
	accepted := m.accepted.Load()
	for _, res := range doBatch(t, c, round) {
		mustOK(t, res)
		if !res.Timings.Reused {
			t.Fatalf("request %d of the second round made a new connection", res.Index)
		}
	}
	if got := m.accepted.Load(); got != accepted {
		t.Errorf("the second round made %d connections, want 0", got-accepted)
	}
	c.backend.conns.mu.Lock()
	held := len(c.backend.conns.conns)
	c.backend.conns.mu.Unlock()
	if held > hosts+concurrency {
		t.Errorf("%d connections held, want at most %d", held, hosts+concurrency)
	}

	// The default keeps concurrency + DefaultSpareConns, so most hosts
	// connect again.
	d := newTestClient(t, func(c *ClientConfig) { c.Concurrency = concurrency })
	if n := cap(d.backend.conns.budget); n != concurrency+DefaultSpareConns {
		t.Fatalf("default budget %d, want %d", n, concurrency+DefaultSpareConns)
	}
	doBatch(t, d, round)
	before := m.accepted.Load()
	doBatch(t, d, round)
	if n := m.accepted.Load() - before; n < hosts/2 {
		t.Errorf("the default budget: %d new connections for the second round over %d hosts, want most", n, hosts)
	}
}

// deadPort is a loopback port nothing listens on: it is bound, never
// listened on, for the test's life, so no other process can take it
// meanwhile and connections to it are refused -- until listen.
type deadPort struct {
	url string
	fd  int
}

func newDeadPort(t *testing.T) *deadPort {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	d := &deadPort{fd: fd}
	t.Cleanup(func() {
		if d.fd >= 0 {
			syscall.Close(d.fd)
		}
	})
	sa, _ := syscall.Getsockname(fd)
	d.url = fmt.Sprintf("http://127.0.0.1:%d/", sa.(*syscall.SockaddrInet4).Port)
	return d
}

// closedPort returns the URL of a new deadPort.
func closedPort(t *testing.T) string { return newDeadPort(t).url }

// listen brings the port to life: it returns a listener on it.
func (d *deadPort) listen(t *testing.T) net.Listener {
	t.Helper()
	if err := syscall.Listen(d.fd, 128); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(d.fd), "listener")
	d.fd = -1
	defer f.Close() // FileListener keeps its own descriptor
	l, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestWaitingRetriesHoldNoGoroutine(t *testing.T) {
	url := closedPort(t)
	c := newTestClient(t, func(c *ClientConfig) {
		c.Concurrency = 16
		c.MaxRetries = 1
		c.BackoffMultiplier, c.MaxDelay = 30, 60 // the retries wait far longer than the test
		c.CircuitBreakerThreshold = -1
	})
	before := runtime.NumGoroutine()
	b, err := c.Submit(context.Background(), reqs(2000, url), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.rmu.Lock()
		waiting := len(b.retries)
		b.rmu.Unlock()
		if waiting == 2000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2000 retries waiting after 10 s", waiting)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A goroutine per waiting retry would be 2,000; the slots' runners
	// and whatever other tests left winding down are far fewer.
	if n := runtime.NumGoroutine() - before; n > 200 {
		t.Errorf("%d goroutines for 2000 waiting retries", n)
	}
	if n := slotsHeld(c); n != 0 {
		t.Errorf("waiting retries hold %d slots", n)
	}
	b.Cancel()
	for _, res := range b.Wait() {
		wantKind(t, res, KindCancelled)
		if res.Attempts != 1 {
			t.Fatalf("a cancelled waiting retry reports %d attempts, want 1", res.Attempts)
		}
	}
}

func TestCircuitBreakerFailsADeadHostFast(t *testing.T) {
	dead := newDeadPort(t)
	url := dead.url
	c := newTestClient(t, func(c *ClientConfig) {
		c.Concurrency = 4
		c.MaxRetries = 2
		c.CircuitBreakerThreshold = 5
		c.CircuitBreakerCooldown = 0.3
	})
	var attempts atomic.Int64
	b, err := c.Submit(testCtx(t), reqs(500, url), BatchOptions{OnResult: func(r *NormalizedResponse) {
		attempts.Add(int64(r.Attempts))
	}})
	if err != nil {
		t.Fatal(err)
	}
	<-b.Done()
	// The circuit opens at the 5th failure; requests already in flight
	// (up to 4) may still fail on their own.
	if n := attempts.Load(); n > 5+4 {
		t.Errorf("%d connection attempts to a dead host, want at most 9", n)
	}
	res := doReq(t, c, RequestConfig{URL: url})
	e := wantKind(t, res, KindConnect)
	if !strings.Contains(e.Message, "circuit open") || res.Attempts != 0 {
		t.Errorf("while open: %d attempts, %q", res.Attempts, e.Message)
	}

	// After the cooldown one probe goes through; once the host listens
	// again it connects and the circuit closes.
	l := dead.listen(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "back") })}
	go srv.Serve(l)
	defer srv.Close()
	time.Sleep(400 * time.Millisecond)
	mustOK(t, doReq(t, c, RequestConfig{URL: url}))
	mustOK(t, doReq(t, c, RequestConfig{URL: url}))
}

func TestCircuitBreakerOff(t *testing.T) {
	url := closedPort(t)
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 4; c.CircuitBreakerThreshold = -1 })
	for _, res := range doBatch(t, c, reqs(50, url)) {
		if e := wantKind(t, res, KindConnect); strings.Contains(e.Message, "circuit") || res.Attempts != 1 {
			t.Fatalf("breaker off, yet %q after %d attempts", e.Message, res.Attempts)
		}
	}
}

// Past maxCircuits hosts the breaker forgets the circuits that hold no
// request back: an open circuit whose cooldown ended with no request
// since is forgotten like a closed one.
func TestCircuitBreakerForgetsExpiredCircuits(t *testing.T) {
	br := newBreaker(1, time.Minute, slog.New(slog.DiscardHandler))
	now := time.Now()
	fail := func(host string, at time.Time) {
		br.record(&task{p: &prepared{options: noOptions}, host: host}, true, at)
	}
	for i := range maxCircuits - 1 {
		fail(fmt.Sprintf("http://dead%d:80", i), now) // each opens its circuit until now+1m
	}
	fail("http://still-open:80", now.Add(30*time.Second)) // the maxCircuits-th
	later := now.Add(time.Minute + time.Second)
	fail("http://new:80", later)
	if n := len(br.hosts); n != 2 || br.watched.Load() != 2 {
		t.Fatalf("%d circuits kept (%d watched) after the cooldowns ended, want 2: the one still open and the new one",
			n, br.watched.Load())
	}
	if br.hosts["http://still-open:80"] == nil {
		t.Fatal("a circuit still open was forgotten")
	}
}

func doBatch(t *testing.T, c *Client, rs []RequestConfig) []*NormalizedResponse {
	t.Helper()
	b, err := c.Submit(testCtx(t), rs, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b.Wait()
}

// dropper counts the requests it reads and answers each as status says:
// 0 drops the connection without answering.
func dropper(t *testing.T, status int) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		n.Add(1)
		if status == 0 {
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return
		}
		w.WriteHeader(status)
		io.WriteString(w, "answer")
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

func TestNonIdempotentRequestsAreNotReplayed(t *testing.T) {
	retries := func(c *ClientConfig) { c.MaxRetries = 3 }
	c := newTestClient(t, retries)
	for _, tt := range []struct {
		name   string
		status int
		req    RequestConfig
		want   int64
	}{
		{"POST dropped after reading", 0, RequestConfig{Method: "POST", Data: TextData("x")}, 1},
		{"PATCH dropped after reading", 0, RequestConfig{Method: "PATCH"}, 1},
		{"GET dropped after reading", 0, RequestConfig{}, 4},
		{"PUT dropped after reading", 0, RequestConfig{Method: "PUT"}, 4},
		{"POST with an Idempotency-Key", 0, RequestConfig{Method: "POST", Headers: map[string]string{"Idempotency-Key": "k1"}}, 4},
		{"POST, caller opts in", 0, RequestConfig{Method: "POST", RetryNonIdempotent: ptr(true)}, 4},
		{"POST answered 503", 503, RequestConfig{Method: "POST"}, 4},
		{"POST answered 429", 429, RequestConfig{Method: "POST"}, 4},
		{"POST answered 500", 500, RequestConfig{Method: "POST"}, 1},
		{"POST answered 502", 502, RequestConfig{Method: "POST"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url, n := dropper(t, tt.status)
			tt.req.URL = url
			res := doReq(t, c, tt.req)
			if res.Error == nil {
				t.Fatalf("succeeded with %d", res.StatusCode)
			}
			if got := n.Load(); got != tt.want {
				t.Errorf("the server received it %d times, want %d (%s)", got, tt.want, res.Error)
			}
			if tt.status == 500 && (res.StatusCode != 500 || string(res.Content) != "answer") {
				t.Errorf("a POST answered 500 and not retried keeps its response: status %d, body %q", res.StatusCode, res.Content)
			}
		})
	}
	t.Run("POST to a closed port is retried", func(t *testing.T) {
		c := newTestClient(t, func(c *ClientConfig) { retries(c); c.CircuitBreakerThreshold = -1 })
		res := doReq(t, c, RequestConfig{URL: closedPort(t), Method: "POST"})
		wantKind(t, res, KindRetriesExhausted)
		if res.Attempts != 4 {
			t.Errorf("%d attempts, want 4", res.Attempts)
		}
	})
	t.Run("client-level opt-in", func(t *testing.T) {
		c := newTestClient(t, func(c *ClientConfig) { retries(c); c.RetryNonIdempotent = true })
		url, n := dropper(t, 0)
		doReq(t, c, RequestConfig{URL: url, Method: "POST"})
		if n.Load() != 4 {
			t.Errorf("received %d times, want 4", n.Load())
		}
	})
}

func TestReadTimeoutEndsASilentServer(t *testing.T) {
	c := newTestClient(t, func(c *ClientConfig) { c.Timeout = 0; c.ReadTimeout = 0.3 })
	for _, path := range []string{"/x/stall", "/x/stall-body"} {
		start := time.Now()
		res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + path})
		e := wantKind(t, res, KindTimeout)
		if !strings.Contains(e.Message, "read_timeout") {
			t.Errorf("%s: message %q does not name read_timeout", path, e.Message)
		}
		if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
			t.Errorf("%s: ended after %v, want about 0.3 s", path, d)
		}
	}
	// A body that keeps coming, slowly, is not a stall: read_timeout
	// bounds the silence, not the whole.
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i < 8; i++ {
			io.WriteString(w, "chunk")
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	}))
	defer srv.Close()
	res := doReq(t, c, RequestConfig{URL: srv.URL})
	mustOK(t, res)
	if string(res.Content) != strings.Repeat("chunk", 8) {
		t.Errorf("body %q", res.Content)
	}
	// The total timeout still names itself.
	c2 := newTestClient(t, func(c *ClientConfig) { c.Timeout = 0.3 })
	e := wantKind(t, doReq(t, c2, RequestConfig{URL: srv.URL}), KindTimeout)
	if !strings.Contains(e.Message, "(timeout)") {
		t.Errorf("total timeout message %q", e.Message)
	}
}

// fullBacklog returns an address whose listen queue is full: a connect to
// it hangs, as to a host that drops SYNs.
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for i := 0; i < 8; i++ { // fill the queue; these connects return or time out
		d := net.Dialer{Timeout: 100 * time.Millisecond}
		if conn, err := d.Dial("tcp", addr); err == nil {
			t.Cleanup(func() { conn.Close() })
		}
	}
	return addr
}

func TestConnectTimeout(t *testing.T) {
	addr := fullBacklog(t)
	c := newTestClient(t, func(c *ClientConfig) { c.Timeout = 0; c.ConnectTimeout = 0.3; c.ReadTimeout = 10 })
	start := time.Now()
	res := doReq(t, c, RequestConfig{URL: "http://" + addr + "/"})
	e := wantKind(t, res, KindTimeout)
	if d := time.Since(start); d > 3*time.Second || !strings.Contains(e.Message, "connect_timeout") {
		t.Errorf("after %v: %q, want a connect_timeout after about 0.3 s", d, e.Message)
	}
}

// growAlloc is a BodyAllocator that records the largest buffer it gave.
type growAlloc struct {
	mu      sync.Mutex
	largest int
	live    int
}

func (a *growAlloc) note(n int) {
	a.mu.Lock()
	a.largest = max(a.largest, n)
	a.mu.Unlock()
}
func (a *growAlloc) Alloc(_ context.Context, n int) []byte {
	if n < 64<<10 {
		return nil
	}
	a.note(n)
	a.mu.Lock()
	a.live++
	a.mu.Unlock()
	return make([]byte, n)
}
func (a *growAlloc) Grow(b []byte, n int) []byte {
	a.note(n)
	g := make([]byte, n)
	copy(g, b)
	return g
}
func (a *growAlloc) Free([]byte) {
	a.mu.Lock()
	a.live--
	a.mu.Unlock()
}

func TestCompressionBombStopsAtTheLimit(t *testing.T) {
	const limit = 3 << 20
	c := newTestClient(t, func(c *ClientConfig) { c.MaxBodySize = limit })
	alloc := &growAlloc{}
	var got []*NormalizedResponse
	var mu sync.Mutex
	bomb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zeros := make([]byte, 1<<20)
		for i := 0; i < 1024 && r.Context().Err() == nil; i++ { // 1 GiB decoded
			if _, err := zw.Write(zeros); err != nil {
				return
			}
		}
		zw.Close()
	}))
	defer bomb.Close()
	b, err := c.Submit(testCtx(t), []RequestConfig{
		{URL: ts.HTTPURL + "/x/gzip"}, // a small gzip body still decodes
		{URL: bomb.URL},
	}, BatchOptions{BodyAllocator: alloc, OnResult: func(r *NormalizedResponse) { mu.Lock(); got = append(got, r); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	<-b.Done()
	for _, r := range got {
		if r.Index == 1 {
			wantKind(t, r, KindBodyTooLarge)
		} else {
			mustOK(t, r)
		}
	}
	// The bomb grew its buffer through the allocator (whose memory grows
	// in place) up to the limit and not beyond.
	if alloc.largest > limit+1 || alloc.largest < limit {
		t.Errorf("largest buffer %d bytes for a limit of %d", alloc.largest, limit)
	}
	if alloc.live != 0 {
		t.Errorf("%d buffers of failed reads not given back", alloc.live)
	}
}

func TestRetryTakesItsTokenBeforeItsSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestClient(t, func(c *ClientConfig) {
			c.Concurrency, c.MaxRetries, c.BackoffMultiplier = 1, 1, 0
			c.RateLimit, c.RateLimitBurst = 0.1, 1 // one token per 10 s
		})
		var calls atomic.Int64
		injectTransport(c, rtFunc(func(r *http.Request) (*http.Response, error) {
			if calls.Add(1) == 1 {
				return fakeResponse(r, 503, nil, "busy"), nil
			}
			return fakeResponse(r, 200, nil, "ok"), nil
		}))
		b, err := c.Submit(context.Background(), reqs(1, "http://fake.test/"), BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the 503 came back; the retry waits for a token
		if calls.Load() != 1 {
			t.Fatalf("%d calls before the token wait", calls.Load())
		}
		if n := slotsHeld(c); n != 0 {
			t.Fatalf("a retry waiting for its rate token holds %d slot(s)", n)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := slotsHeld(c); n != 0 || calls.Load() != 1 {
			t.Fatalf("halfway through the token wait: %d slots held, %d calls", n, calls.Load())
		}
		res := b.Wait()[0]
		mustOK(t, res)
		if res.Attempts != 2 {
			t.Errorf("%d attempts, want 2", res.Attempts)
		}
	})
}

func TestAbandonDropsWhatNeverStarted(t *testing.T) {
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 2 })
	var delivered atomic.Int64
	b, err := c.Submit(context.Background(), reqs(200_000, ts.HTTPURL+"/x/stall"), BatchOptions{
		OnResult: func(r *NormalizedResponse) {
			delivered.Add(1)
			if r.Error == nil || r.Error.Kind != KindCancelled {
				t.Errorf("request %d: %v, want cancelled", r.Index, r.Error)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for slotsHeld(c) < 2 { // both slots taken by stalled requests
		time.Sleep(time.Millisecond)
	}
	b.Abandon()
	select {
	case <-b.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("an abandoned batch did not end")
	}
	if n := delivered.Load(); n != 2 {
		t.Errorf("%d results delivered after Abandon, want the 2 in flight", n)
	}
}

// hostCounter is a server that records the most requests it served at
// once and when each ended.
type hostCounter struct {
	url      string
	now, max atomic.Int64
	mu       sync.Mutex
	ends     []time.Time
}

func newHostCounter(t *testing.T, addr string, hold time.Duration) *hostCounter {
	h := &hostCounter{}
	srv, _ := headerEcho(t, addr) // only for its listener's address
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := h.now.Add(1)
		for m := h.max.Load(); n > m && !h.max.CompareAndSwap(m, n); m = h.max.Load() {
		}
		time.Sleep(hold)
		h.now.Add(-1)
		h.mu.Lock()
		h.ends = append(h.ends, time.Now())
		h.mu.Unlock()
		io.WriteString(w, "ok")
	})
	h.url = srv.URL
	return h
}

func TestPerHostLimitsNeverHoldUpOtherHosts(t *testing.T) {
	slow := newHostCounter(t, "127.0.0.1:0", 50*time.Millisecond)
	fast := newHostCounter(t, "127.0.0.2:0", 0)
	c := newTestClient(t, func(c *ClientConfig) {
		c.Concurrency = 8
		c.ConcurrencyPerHost = 2
		c.RateLimitPerHost = 20
		c.RateLimitPerHostBurst = 1
	})
	var batch []RequestConfig
	for i := 0; i < 20; i++ { // the limited host first, so a gate that blocked would hold up the rest
		batch = append(batch, RequestConfig{URL: slow.url + "/a"}, RequestConfig{URL: fast.url + "/b"})
	}
	start := time.Now()
	for _, res := range doBatch(t, c, batch) {
		mustOK(t, res)
	}
	if m := slow.max.Load(); m > 2 {
		t.Errorf("the limited host served %d requests at once, want at most 2", m)
	}
	// 20 requests at 20/s with a burst of 1 take at least 19/20 s.
	if d := slow.ends[len(slow.ends)-1].Sub(start); d < 900*time.Millisecond {
		t.Errorf("the limited host's 20 requests ended after %v, want >= 0.95 s", d)
	}
	// The fast host is limited too (2 at once, 20/s), but by its own gate:
	// its requests run beside the slow host's, not after them.
	if d := fast.ends[len(fast.ends)-1].Sub(start); d > slow.ends[len(slow.ends)-1].Sub(start)+200*time.Millisecond {
		t.Errorf("the fast host finished %v after start, after the slow one", d)
	}
	if m := fast.max.Load(); m > 2 {
		t.Errorf("the fast host served %d at once, want at most 2", m)
	}
}

func TestPerHostParkedTasksEndOnCancel(t *testing.T) {
	slow := newHostCounter(t, "127.0.0.1:0", 2*time.Second)
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 8; c.ConcurrencyPerHost = 1 })
	b, err := c.Submit(context.Background(), reqs(10, slow.url), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for slow.now.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the other 9 are parked by now
	start := time.Now()
	b.Cancel()
	for _, res := range b.Wait() {
		wantKind(t, res, KindCancelled)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancelling took %v: parked requests waited for their host", d)
	}
}
