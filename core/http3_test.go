package core

import (
	"bytes"
	"errors"
	"log"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastreq/fastreq/tests/testserver"
)

// h3Client is a client of the http3 backend that trusts the test CA.
func h3Client(t testing.TB, edit func(*ClientConfig)) *Client {
	t.Helper()
	return newTestClient(t, func(cfg *ClientConfig) {
		cfg.Backend = "http3"
		cfg.VerifySSL = ptr(true)
		cfg.CAFile = ts.CAFile
		if edit != nil {
			edit(cfg)
		}
	})
}

// altSvcClient is an auto client with HTTP/3 upgrades, trusting the test CA.
func altSvcClient(t testing.TB, edit func(*ClientConfig)) *Client {
	t.Helper()
	return newTestClient(t, func(cfg *ClientConfig) {
		cfg.HTTP3 = true
		cfg.VerifySSL = ptr(true)
		cfg.CAFile = ts.CAFile
		if edit != nil {
			edit(cfg)
		}
	})
}

func TestHTTP3Only(t *testing.T) {
	c := h3Client(t, nil)
	res := doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/proto"})
	mustOK(t, res)
	if res.HTTPVersion != "HTTP/3.0" || string(res.Content) != "HTTP/3.0" {
		t.Fatalf("http_version %q, server saw %q; want HTTP/3.0", res.HTTPVersion, res.Content)
	}
	tm := res.Timings
	if tm.Connect <= 0 || tm.TLS != 0 || tm.Reused || tm.TTFB <= 0 || tm.Total < tm.TTFB {
		t.Errorf("first request's timings %+v: want the QUIC handshake as Connect, TLS 0, a TTFB", tm)
	}
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/get"})
	mustOK(t, res)
	if tm := res.Timings; !tm.Reused || tm.Connect != 0 || tm.DNS != 0 {
		t.Errorf("second request's timings %+v: want a reused connection", tm)
	}
	if n := len(c.backend.conns.budget); n != 1 {
		t.Errorf("%d connection tokens held, want 1 (the QUIC connection)", n)
	}
	if c.Backend().SupportsHTTP2() || c.Backend().Name() != "http3" {
		t.Errorf("backend %q SupportsHTTP2 %v", c.Backend().Name(), c.Backend().SupportsHTTP2())
	}
}

func TestHTTP3Features(t *testing.T) {
	c := h3Client(t, func(cfg *ClientConfig) { cfg.MaxBodySize = 1000 })
	ctx := testCtx(t)

	// POST with a body, a decoded gzip body, redirects, cookies.
	res := doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/echo", Method: "POST", Data: TextData("hello h3")})
	mustOK(t, res)
	if !bytes.Contains(res.Content, []byte("hello h3")) {
		t.Errorf("echo: %q", res.Content)
	}
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/gzip"}))
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/redirect-chain?n=3"})
	mustOK(t, res)
	if !strings.HasSuffix(res.URL, "n=0") || res.HTTPVersion != "HTTP/3.0" {
		t.Errorf("after redirects: %s over %s", res.URL, res.HTTPVersion)
	}
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/set-cookie?h3=yes"}))
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/cookies"})
	if !bytes.Contains(res.Content, []byte(`"h3":"yes"`)) {
		t.Errorf("cookie not sent back: %s", res.Content)
	}

	// max_body_size, streaming and downloads.
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/bytes/5000"})
	if !errors.Is(res.Err(), ErrBodyTooLarge) {
		t.Errorf("5000 bytes with max_body_size 1000: %v", res.Err())
	}
	var got int
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/bytes/70000", Stream: true,
		OnChunk: func(b []byte) error { got += len(b); return nil }})
	mustOK(t, res)
	if got != 70000 {
		t.Errorf("streamed %d bytes, want 70000", got)
	}
	path := t.TempDir() + "/body"
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/bytes/90000", OutputPath: path})
	mustOK(t, res)
	if fi, err := os.Stat(path); err != nil || fi.Size() != 90000 {
		t.Errorf("download: %v, %v", fi, err)
	}

	// read_timeout: the body stalls after 100 bytes.
	c2 := h3Client(t, func(cfg *ClientConfig) { cfg.ReadTimeout = 0.3 })
	start := time.Now()
	res, _ = c2.Do(ctx, RequestConfig{URL: ts.H3URL + "/x/stall-body?seconds=5"})
	if !errors.Is(res.Err(), ErrTimeout) || time.Since(start) > 3*time.Second {
		t.Errorf("stalled body: %v after %v, want a timeout after 0.3 s", res.Err(), time.Since(start))
	}
}

func TestHTTP3Refusals(t *testing.T) {
	c := h3Client(t, nil)
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/get"})
	if res.Error == nil || res.Error.Kind != KindValidation || res.Error.Field != "url" ||
		!strings.Contains(res.Error.Message, "https") {
		t.Errorf("http:// with the http3 backend: %+v", res.Error)
	}
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/get", Proxy: ts.SOCKS5URL})
	if res.Error == nil || res.Error.Kind != KindConfiguration || res.Error.Field != "proxy" {
		t.Errorf("a request's proxy with the http3 backend: %+v", res.Error)
	}
	// A redirect from https to http:// is refused too.
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/redirect-to?url=" + ts.HTTPURL + "/get"})
	if res.Error == nil || res.Error.Kind != KindValidation {
		t.Errorf("redirect to http:// with the http3 backend: %+v", res.Error)
	}

	for name, edit := range map[string]func(*ClientConfig){
		"proxies":     func(cfg *ClientConfig) { cfg.Proxies = []string{ts.ProxyAddr} },
		"impersonate": func(cfg *ClientConfig) { cfg.Impersonate = "chrome" },
	} {
		cfg := testConfig()
		cfg.Backend = "http3"
		edit(&cfg)
		if _, err := NewClient(cfg); !errors.Is(err, ErrConfiguration) {
			t.Errorf("http3 with %s: %v, want a configuration error", name, err)
		}
	}

	// The server does not check the certificate: KindTLS, not retried.
	c3 := newTestClient(t, func(cfg *ClientConfig) {
		cfg.Backend = "http3"
		cfg.VerifySSL = ptr(true)
		cfg.MaxRetries = 2
	})
	res = doReq(t, c3, RequestConfig{URL: ts.H3URL + "/get"})
	if res.Error == nil || res.Error.Kind != KindTLS || res.Error.Attempts != 1 {
		t.Errorf("unknown CA over QUIC: %+v", res.Error)
	}
}

func TestHTTP3HandshakeTimeout(t *testing.T) {
	// Nothing answers on UDP at the many-hosts port: the handshake times
	// out within connect_timeout, a connect-phase timeout.
	c := h3Client(t, func(cfg *ClientConfig) { cfg.ConnectTimeout = 0.3 })
	start := time.Now()
	res := doReq(t, c, RequestConfig{URL: strings.Replace(ts.ManyHostsURL, "http:", "https:", 1) + "/get"})
	if res.Error == nil || res.Error.Kind != KindTimeout || !strings.Contains(res.Error.Message, "connect_timeout") {
		t.Errorf("no QUIC server: %+v", res.Error)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v with connect_timeout 0.3 s", d)
	}
	if n := len(c.backend.conns.budget); n != 0 {
		t.Errorf("%d connection tokens held after a failed handshake", n)
	}
}

// A name with several addresses: when the first does not answer, the
// handshake goes on to the next within connect_timeout, as TCP dials do.
func TestHTTP3TriesEveryAddress(t *testing.T) {
	u, err := url.Parse(ts.H3URL)
	if err != nil {
		t.Fatal(err)
	}
	live := netip.MustParseAddr(u.Hostname())
	dead := netip.MustParseAddr("127.0.0.2") // nothing listens on UDP there
	s := startDNSServer(t, map[string][]netip.Addr{"h3.fastreq.test": {dead, live}})
	c := h3Client(t, func(cfg *ClientConfig) { cfg.ConnectTimeout = 4; cfg.VerifySSL = ptr(false) })
	c.backend.dns.resolver = s.resolver()
	start := time.Now()
	res := doReq(t, c, RequestConfig{URL: "https://h3.fastreq.test:" + u.Port() + "/x/proto"})
	mustOK(t, res)
	if string(res.Content) != "HTTP/3.0" {
		t.Fatalf("the server saw %q, want HTTP/3.0", res.Content)
	}
	// The dead address had its share of the 4 s: half, as net.Dialer gives.
	if d := time.Since(start); d < 1500*time.Millisecond || d > 3500*time.Millisecond {
		t.Errorf("took %v: want about 2 s (the first address's share of connect_timeout)", d)
	}
	if n := len(c.backend.conns.budget); n != 1 {
		t.Errorf("%d connection tokens held, want 1 (the QUIC connection)", n)
	}
}

func TestHTTP3OneConnection(t *testing.T) {
	c := h3Client(t, func(cfg *ClientConfig) { cfg.Concurrency = 64 })
	before := ts.H3Conns()
	reqs := make([]RequestConfig, 500)
	for i := range reqs {
		reqs[i] = RequestConfig{URL: ts.H3URL + "/x/json"}
	}
	b, err := c.Submit(testCtx(t), reqs, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range b.Wait() {
		mustOK(t, res)
		if res.HTTPVersion != "HTTP/3.0" {
			t.Fatalf("http_version %q", res.HTTPVersion)
		}
	}
	if n := ts.H3Conns() - before; n != 1 {
		t.Errorf("500 requests at concurrency 64 made %d QUIC connections, want 1", n)
	}
}

func TestHTTP3AltSvcUpgrade(t *testing.T) {
	c := altSvcClient(t, nil)
	res := doReq(t, c, RequestConfig{URL: ts.H3URL + "/get"})
	mustOK(t, res)
	if res.HTTPVersion != "HTTP/2.0" {
		t.Fatalf("first request over %s, want HTTP/2.0 (TCP, before any Alt-Svc)", res.HTTPVersion)
	}
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/proto"})
	mustOK(t, res)
	if res.HTTPVersion != "HTTP/3.0" || string(res.Content) != "HTTP/3.0" {
		t.Fatalf("second request over %s (server saw %s), want HTTP/3.0 after Alt-Svc", res.HTTPVersion, res.Content)
	}
	// Other origins stay on TCP; http2=False too; an impersonating
	// client never upgrades.
	res = doReq(t, c, RequestConfig{URL: ts.TLSURL + "/get"})
	if res.HTTPVersion != "HTTP/2.0" {
		t.Errorf("an origin without Alt-Svc over %s", res.HTTPVersion)
	}
	res = doReq(t, c, RequestConfig{URL: ts.H3URL + "/get", HTTP2: ptr(false)})
	if res.HTTPVersion != "HTTP/1.1" {
		t.Errorf("http2=False over %s", res.HTTPVersion)
	}
	imp := altSvcClient(t, func(cfg *ClientConfig) { cfg.Impersonate = "chrome" })
	for range 2 {
		res = doReq(t, imp, RequestConfig{URL: ts.H3URL + "/get"})
		mustOK(t, res)
	}
	if res.HTTPVersion != "HTTP/2.0" {
		t.Errorf("impersonating client over %s, want TCP", res.HTTPVersion)
	}
}

func TestHTTP3Fallback(t *testing.T) {
	s, err := testserver.New(testserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var logs bytes.Buffer
	var mu sync.Mutex
	c := newTestClient(t, func(cfg *ClientConfig) {
		cfg.HTTP3 = true
		cfg.CAFile = s.CAFile
		cfg.VerifySSL = ptr(true)
		cfg.ConnectTimeout = 0.5
		cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	})
	for i, want := range []string{"HTTP/2.0", "HTTP/3.0"} {
		res := doReq(t, c, RequestConfig{URL: s.H3URL + "/get"})
		mustOK(t, res)
		if res.HTTPVersion != want {
			t.Fatalf("request %d over %s, want %s", i, res.HTTPVersion, want)
		}
	}
	if err := s.StopH3(); err != nil {
		t.Fatal(err)
	}
	// The QUIC connection is gone and no new one answers: after the
	// handshake's time the request goes over TCP, and the origin stays
	// there without waiting again.
	start := time.Now()
	res := doReq(t, c, RequestConfig{URL: s.H3URL + "/get"})
	mustOK(t, res)
	if res.HTTPVersion != "HTTP/2.0" {
		t.Fatalf("after the h3 server stopped: over %s", res.HTTPVersion)
	}
	first := time.Since(start)
	start = time.Now()
	for range 5 {
		res = doReq(t, c, RequestConfig{URL: s.H3URL + "/get"})
		mustOK(t, res)
	}
	if d := time.Since(start); d > 400*time.Millisecond || res.HTTPVersion != "HTTP/2.0" {
		t.Errorf("5 requests once the origin is marked broken took %v (the first fallback %v), last over %s", d, first, res.HTTPVersion)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "QUIC failed") {
		t.Errorf("no log record of the fallback: %s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// With buffers smaller than quic-go wants, nothing goes through the
// standard log package (quic-go's warning would go to stderr); the
// engine's logger says it.
func TestHTTP3SmallUDPBuffersStaySilent(t *testing.T) {
	var std bytes.Buffer
	log.SetOutput(&std)
	old := udpBufferWant
	udpBufferWant = 1 << 40
	t.Cleanup(func() {
		log.SetOutput(os.Stderr)
		udpBufferWant = old
	})
	var logs bytes.Buffer
	var mu sync.Mutex
	c := h3Client(t, func(cfg *ClientConfig) {
		cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	res := doReq(t, c, RequestConfig{URL: ts.H3URL + "/x/bytes/200000"})
	mustOK(t, res)
	if res.HTTPVersion != "HTTP/3.0" || len(res.Content) != 200000 {
		t.Fatalf("%s, %d bytes", res.HTTPVersion, len(res.Content))
	}
	if std.Len() != 0 {
		t.Errorf("the standard logger got %q", std.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "UDP socket buffers") {
		t.Errorf("the engine's logger did not tell: %s", logs.String())
	}
}

func TestParseAltSvc(t *testing.T) {
	for _, tc := range []struct {
		in          []string
		port        string
		maxAge      time.Duration
		clear, ok   bool
		description string
	}{
		{[]string{`h3=":443"; ma=86400`}, "443", 86400 * time.Second, false, true, "plain"},
		{[]string{`h3=":8443"`}, "8443", altSvcDefaultMaxAge, false, true, "default ma"},
		{[]string{`h3-29=":443", h3="example.com:9443"; ma=60; persist=1`}, "9443", time.Minute, false, true, "same host named"},
		{[]string{`h3="other.example:443"`}, "", 0, false, false, "other host"},
		{[]string{`h2=":443"`, `h3=":444";ma="120"`}, "444", 2 * time.Minute, false, true, "second field value"},
		{[]string{`clear`}, "", 0, true, false, "clear"},
		{[]string{`h3=":0"`, `h3=garbage`}, "", 0, false, false, "bad ports"},
		{[]string{`quic=":443"; v="46,43", h3=":443"; ma=5`}, "443", 5 * time.Second, false, true, "quoted comma"},
	} {
		port, ma, clear, ok := parseAltSvc(tc.in, "example.com")
		if port != tc.port || ma != tc.maxAge || clear != tc.clear || ok != tc.ok {
			t.Errorf("%s: %q -> %q %v %v %v", tc.description, tc.in, port, ma, clear, ok)
		}
	}

	c := newAltSvcCache()
	now := time.Now()
	h := http.Header{"Alt-Svc": {`h3=":443"; ma=10`}}
	c.learn("example.com:443", "example.com", h, now)
	if p, ok := c.lookup("example.com:443", now.Add(5*time.Second)); !ok || p != "443" {
		t.Errorf("fresh entry: %q %v", p, ok)
	}
	if _, ok := c.lookup("example.com:443", now.Add(11*time.Second)); ok {
		t.Error("entry past its max-age still used")
	}
	c.learn("example.com:443", "example.com", h, now)
	until := c.markBroken("example.com:443", now)
	if _, ok := c.lookup("example.com:443", now.Add(time.Second)); ok || until.Sub(now) != h3BrokenFirst {
		t.Errorf("broken origin still upgraded, or broken for %v", until.Sub(now))
	}
	if until := c.markBroken("example.com:443", now); until.Sub(now) != 2*h3BrokenFirst {
		t.Errorf("second failure: broken for %v, want twice %v", until.Sub(now), h3BrokenFirst)
	}
	c.learn("example.com:443", "example.com", http.Header{"Alt-Svc": {"clear"}}, now)
	if len(c.alts) != 0 {
		t.Error("clear left the entry")
	}
}
