package testserver

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

const (
	proxyUser, proxyPass = "puser", "p@ss:word"
	socksUser, socksPass = "suser", "spass"
)

// srv is shared by most tests; it has proxy and SOCKS5 auth switched on.
var srv *Servers

func TestMain(m *testing.M) {
	var err error
	srv, err = New(Options{
		ProxyUser: proxyUser, ProxyPass: proxyPass,
		SOCKS5User: socksUser, SOCKS5Pass: socksPass,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "close:", err)
		code = 1
	}
	os.Exit(code)
}

// variant is one way of reaching the shared handler.
type variant struct {
	name      string
	base      string
	client    *http.Client
	wantProto string
}

// variants returns a fresh client per protocol. noReuse turns off
// keep-alive on HTTP/1 so the transport never retries a request on a reused
// connection behind the test's back.
func variants(t *testing.T, noReuse bool) []variant {
	t.Helper()
	h1 := &http.Transport{TLSClientConfig: srv.TLSClientConfig(), DisableKeepAlives: noReuse}
	h2 := &http2.Transport{TLSClientConfig: srv.TLSClientConfig()}
	h2c := &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(func() {
		h1.CloseIdleConnections()
		h2.CloseIdleConnections()
		h2c.CloseIdleConnections()
	})
	return []variant{
		{"h1", srv.HTTPURL, &http.Client{Transport: h1}, "HTTP/1.1"},
		{"h2c", srv.HTTPURL, &http.Client{Transport: h2c}, "HTTP/2.0"},
		{"h2-tls", srv.TLSURL, &http.Client{Transport: h2}, "HTTP/2.0"},
		{"h1-tls", srv.TLSH1URL, &http.Client{Transport: h1}, "HTTP/1.1"},
	}
}

var keySeq atomic.Int64

// uniqueKey keeps per-key counters apart across -count runs.
func uniqueKey(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, keySeq.Add(1))
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", u, err)
	}
	return resp, body
}

func decodeJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("bad JSON %q: %v", b, err)
	}
}

func TestProtocols(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			resp, body := get(t, v.client, v.base+"/x/proto")
			if string(body) != v.wantProto || resp.Proto != v.wantProto {
				t.Fatalf("server saw %q, client %q; want %q", body, resp.Proto, v.wantProto)
			}
		})
	}
}

func TestALPN(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want string
	}{{srv.TLSURL, "h2"}, {srv.TLSH1URL, "http/1.1"}} {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(tc.url, "https://"), &tls.Config{
			RootCAs:    srv.CertPool,
			NextProtos: []string{"h2", "http/1.1"},
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		got := conn.ConnectionState().NegotiatedProtocol
		conn.Close()
		if got != tc.want {
			t.Errorf("%s negotiated %q, want %q", tc.url, got, tc.want)
		}
	}

	// A stock transport that may use HTTP/2 picks it on the h2 server only.
	tr := &http.Transport{TLSClientConfig: srv.TLSClientConfig(), ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	if resp, _ := get(t, c, srv.TLSURL+"/get"); resp.ProtoMajor != 2 {
		t.Errorf("TLS server: got %s", resp.Proto)
	}
	if resp, _ := get(t, c, srv.TLSH1URL+"/get"); resp.ProtoMajor != 1 {
		t.Errorf("TLS h1 server: got %s", resp.Proto)
	}
}

func TestCAFile(t *testing.T) {
	pem, err := os.ReadFile(srv.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pem, srv.CAPEM) || !bytes.Contains(pem, []byte("BEGIN CERTIFICATE")) {
		t.Fatalf("CA file does not hold the CA PEM")
	}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(srv.TLSURL, "https://"), &tls.Config{RootCAs: srv.CertPool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("certificate not valid for localhost: %v", err)
	}
	conn.Close()
}

func TestHTTPBin(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			resp, body := get(t, v.client, v.base+"/get?a=1")
			var got struct {
				Args map[string][]string `json:"args"`
			}
			decodeJSON(t, body, &got)
			if resp.StatusCode != 200 || got.Args["a"][0] != "1" {
				t.Fatalf("status %d body %s", resp.StatusCode, body)
			}
			if resp, _ := get(t, v.client, v.base+"/status/418"); resp.StatusCode != 418 {
				t.Fatalf("/status/418 gave %d", resp.StatusCode)
			}
		})
	}
}

func TestReset(t *testing.T) {
	for _, v := range variants(t, true) {
		t.Run(v.name, func(t *testing.T) {
			resp, err := v.client.Get(v.base + "/x/reset")
			if err == nil {
				resp.Body.Close()
				t.Fatalf("got a response %s", resp.Status)
			}
			if v.name == "h1" && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("want connection reset, got %v", err)
			}
		})
	}
}

func TestStall(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			start := time.Now()
			_, body := get(t, v.client, v.base+"/x/stall?seconds=0.2")
			if el := time.Since(start); el < 200*time.Millisecond || string(body) != "done\n" {
				t.Fatalf("returned %q after %v", body, el)
			}

			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", v.base+"/x/stall", nil)
			if resp, err := v.client.Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("default stall answered: %s", resp.Status)
			} else if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("want deadline exceeded, got %v", err)
			}
		})
	}
}

func TestStallBody(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", v.base+"/x/stall-body", nil)
			resp, err := v.client.Do(req)
			if err != nil {
				t.Fatalf("headers should arrive: %v", err)
			}
			defer resp.Body.Close()
			if resp.ContentLength != 200 {
				t.Fatalf("Content-Length %d", resp.ContentLength)
			}
			head := make([]byte, 100)
			if _, err := io.ReadFull(resp.Body, head); err != nil || !bytes.Equal(head, PatternBytes(100)) {
				t.Fatalf("first part: %v", err)
			}
			if n, err := resp.Body.Read(make([]byte, 10)); err == nil {
				t.Fatalf("read %d more bytes during the stall", n)
			}

			_, body := get(t, v.client, v.base+"/x/stall-body?seconds=0.1")
			if !bytes.Equal(body, PatternBytes(200)) {
				t.Fatalf("finite stall body: %d bytes", len(body))
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	for _, v := range variants(t, true) {
		t.Run(v.name, func(t *testing.T) {
			resp, err := v.client.Get(v.base + "/x/truncate")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.ContentLength != 1000 {
				t.Fatalf("Content-Length %d", resp.ContentLength)
			}
			body, err := io.ReadAll(resp.Body)
			if err == nil || len(body) != 100 {
				t.Fatalf("read %d bytes, err %v; want 100 and an error", len(body), err)
			}
			if v.name == "h1" && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("want unexpected EOF, got %v", err)
			}
		})
	}
}

func TestStatusThenOK(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			key := uniqueKey("sto-" + v.name)
			u := v.base + "/x/status-then-ok?key=" + key + "&fail=2&status=429&retry_after=7"
			for i := 1; i <= 2; i++ {
				resp, _ := get(t, v.client, u)
				if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" {
					t.Fatalf("attempt %d: %d Retry-After %q", i, resp.StatusCode, resp.Header.Get("Retry-After"))
				}
			}
			resp, body := get(t, v.client, u)
			var got attemptsBody
			decodeJSON(t, body, &got)
			if resp.StatusCode != 200 || got.Key != key || got.Attempts != 3 {
				t.Fatalf("third attempt: %d %s", resp.StatusCode, body)
			}
			if n := srv.Hits(key); n != 3 {
				t.Fatalf("Hits = %d", n)
			}

			// Defaults: one 503 without Retry-After; HTTP dates pass verbatim.
			date := "Wed, 21 Oct 2015 07:28:00 GMT"
			u = v.base + "/x/status-then-ok?key=" + key + "-d&retry_after=" + url.QueryEscape(date)
			resp, _ = get(t, v.client, u)
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != date {
				t.Fatalf("default: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if resp, _ = get(t, v.client, u); resp.StatusCode != 200 {
				t.Fatalf("second default attempt: %d", resp.StatusCode)
			}
		})
	}
}

func TestFlakyReset(t *testing.T) {
	for _, v := range variants(t, true) {
		t.Run(v.name, func(t *testing.T) {
			key := uniqueKey("flaky-" + v.name)
			u := v.base + "/x/flaky-reset?fail=2&key=" + key
			for i := 1; i <= 2; i++ {
				if resp, err := v.client.Get(u); err == nil {
					resp.Body.Close()
					t.Fatalf("attempt %d answered %s", i, resp.Status)
				}
			}
			_, body := get(t, v.client, u)
			var got attemptsBody
			decodeJSON(t, body, &got)
			if got.Attempts != 3 || srv.Hits(key) != 3 {
				t.Fatalf("body %s, hits %d", body, srv.Hits(key))
			}
		})
	}
}

func TestJSONAndBytes(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			resp, body := get(t, v.client, v.base+"/x/json")
			if !bytes.Equal(body, JSONBody) || resp.Header.Get("Content-Type") != "application/json" || !json.Valid(body) {
				t.Fatalf("json: %s", body)
			}
			for _, n := range []int{0, 1, 1000, 70000} {
				resp, body := get(t, v.client, fmt.Sprintf("%s/x/bytes/%d", v.base, n))
				if resp.ContentLength != int64(n) || !bytes.Equal(body, PatternBytes(n)) {
					t.Fatalf("bytes/%d: got %d bytes", n, len(body))
				}
			}
		})
	}
	if len(JSONBody) < 150 || len(JSONBody) > 250 {
		t.Errorf("JSONBody is %d bytes", len(JSONBody))
	}
}

func TestBytes64MiB(t *testing.T) {
	const n = 64 << 20
	resp, err := http.Get(srv.HTTPURL + fmt.Sprintf("/x/bytes/%d", n))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Check the pattern without buffering 64 MiB.
	buf := make([]byte, 256<<10)
	var off int
	for {
		k, err := resp.Body.Read(buf)
		for i := 0; i < k; i++ {
			if buf[i] != byte(off+i) {
				t.Fatalf("byte %d = %d", off+i, buf[i])
			}
		}
		off += k
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if off != n {
		t.Fatalf("got %d bytes", off)
	}
}

func TestRedirects(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			resp, _ := get(t, v.client, v.base+"/x/redirect-chain?n=3")
			if resp.StatusCode != 200 || resp.Request.URL.RequestURI() != "/x/redirect-chain?n=0" {
				t.Fatalf("chain ended at %s with %d", resp.Request.URL, resp.StatusCode)
			}
			hops := 0
			c := *v.client
			c.CheckRedirect = func(*http.Request, []*http.Request) error { hops++; return nil }
			get(t, &c, v.base+"/x/redirect-chain?n=4")
			if hops != 4 {
				t.Fatalf("n=4 took %d redirects", hops)
			}

			if _, err := v.client.Get(v.base + "/x/redirect-loop"); err == nil || !strings.Contains(err.Error(), "stopped after 10 redirects") {
				t.Fatalf("loop: %v", err)
			}
		})
	}
}

func TestCookies(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			jar, _ := cookiejar.New(nil)
			c := *v.client
			c.Jar = jar
			resp, _ := get(t, &c, v.base+"/x/set-cookie?a=1&b=two")
			if len(resp.Cookies()) != 2 {
				t.Fatalf("Set-Cookie: %v", resp.Header["Set-Cookie"])
			}
			_, body := get(t, &c, v.base+"/x/cookies")
			var got struct{ Cookies map[string]string }
			decodeJSON(t, body, &got)
			if got.Cookies["a"] != "1" || got.Cookies["b"] != "two" {
				t.Fatalf("cookies echoed: %s", body)
			}
		})
	}
}

func TestHeadersMulti(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			resp, _ := get(t, v.client, v.base+"/x/headers-multi")
			if got := resp.Header.Values("X-Multi"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
				t.Fatalf("X-Multi: %q", got)
			}
			if got := resp.Header.Values("Set-Cookie"); len(got) != 2 {
				t.Fatalf("Set-Cookie: %q", got)
			}
		})
	}
}

func TestCompressed(t *testing.T) {
	decoders := map[string]func(io.Reader) (io.Reader, error){
		"gzip":    func(r io.Reader) (io.Reader, error) { return gzip.NewReader(r) },
		"deflate": func(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) },
	}
	for _, v := range variants(t, false) {
		for coding, dec := range decoders {
			t.Run(v.name+"/"+coding, func(t *testing.T) {
				req, _ := http.NewRequest("GET", v.base+"/x/"+coding, nil)
				// An explicit header stops the transport from decoding for us.
				req.Header.Set("Accept-Encoding", coding)
				resp, err := v.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.Header.Get("Content-Encoding") != coding {
					t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
				}
				r, err := dec(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(body, CompressedJSON) || !json.Valid(body) {
					t.Fatalf("decoded %q, %v", body, err)
				}
			})
		}
	}
}

func TestEcho(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", v.base+"/x/echo?a=1&a=2&b=x", strings.NewReader(`{"k":[1,2]}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Add("X-Multi", "one")
			req.Header.Add("X-Multi", "two")
			resp, err := v.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var got EchoResponse
			decodeJSON(t, body, &got)
			if got.Method != "POST" || got.Proto != v.wantProto || got.Body != `{"k":[1,2]}` || got.Path != "/x/echo" {
				t.Fatalf("echo: %s", body)
			}
			if q := got.Query["a"]; len(q) != 2 || q[1] != "2" || got.Query["b"][0] != "x" {
				t.Fatalf("query: %v", got.Query)
			}
			if h := got.Headers["x-multi"]; len(h) != 2 || h[0] != "one" || h[1] != "two" {
				t.Fatalf("headers: %v", got.Headers)
			}
			if got.Headers["content-type"][0] != "application/json" || len(got.Headers["host"]) != 1 {
				t.Fatalf("headers: %v", got.Headers)
			}
			if m, ok := got.JSON.(map[string]any); !ok || len(m["k"].([]any)) != 2 {
				t.Fatalf("json: %#v", got.JSON)
			}
			if got.TLS != strings.HasPrefix(v.base, "https") {
				t.Fatalf("tls: %v", got.TLS)
			}

			resp, err = v.client.PostForm(v.base+"/x/echo", url.Values{"x": {"1", "2"}, "y": {"z w"}})
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			got = EchoResponse{}
			decodeJSON(t, body, &got)
			if f := got.Form; len(f["x"]) != 2 || f["y"][0] != "z w" || got.JSON != nil {
				t.Fatalf("form: %s", body)
			}
		})
	}
}

func TestSlowChunks(t *testing.T) {
	for _, v := range variants(t, false) {
		t.Run(v.name, func(t *testing.T) {
			start := time.Now()
			resp, err := v.client.Get(v.base + "/x/slow-chunks?n=3&interval_ms=100&size=10")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			// The first chunk must arrive well before the whole stream ends.
			first := make([]byte, 10)
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatal(err)
			}
			firstAt := time.Since(start)
			rest, err := io.ReadAll(resp.Body)
			total := time.Since(start)
			if err != nil || len(rest) != 20 || !bytes.Equal(first, PatternBytes(10)) {
				t.Fatalf("rest %d bytes, %v", len(rest), err)
			}
			if total < 200*time.Millisecond || total-firstAt < 150*time.Millisecond {
				t.Fatalf("first chunk at %v, end at %v: not streamed", firstAt, total)
			}
		})
	}
}

// proxied builds a client that goes through proxyURL with a plain
// HTTP/1 transport; forceH2 lets it negotiate h2 inside CONNECT tunnels.
func proxied(t *testing.T, proxyURL string, forceH2 bool) *http.Client {
	t.Helper()
	pu, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{
		Proxy:             http.ProxyURL(pu),
		TLSClientConfig:   srv.TLSClientConfig(),
		ForceAttemptHTTP2: forceH2,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestHTTPProxy(t *testing.T) {
	c := proxied(t, srv.ProxyURL, true)
	before := srv.ProxyRequests()

	// Plain absolute-URI forwarding.
	_, body := get(t, c, srv.HTTPURL+"/x/echo")
	var echo EchoResponse
	decodeJSON(t, body, &echo)
	if echo.Proto != "HTTP/1.1" || echo.Headers["proxy-authorization"] != nil {
		t.Fatalf("forwarded request: %s", body)
	}
	// CONNECT to the h2 TLS server: h2 runs end to end inside the tunnel.
	if resp, body := get(t, c, srv.TLSURL+"/x/proto"); string(body) != "HTTP/2.0" || resp.TLS == nil {
		t.Fatalf("through CONNECT: %q", body)
	}
	// CONNECT to the HTTP/1.1-only TLS server.
	if _, body := get(t, c, srv.TLSH1URL+"/x/proto"); string(body) != "HTTP/1.1" {
		t.Fatalf("through CONNECT (h1): %q", body)
	}
	// Compressed bodies and streams pass through untouched.
	req, _ := http.NewRequest("GET", srv.HTTPURL+"/x/gzip", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("proxy changed Content-Encoding: %q", resp.Header.Get("Content-Encoding"))
	}
	resp, err = c.Get(srv.HTTPURL + "/x/slow-chunks?n=2&interval_ms=300&size=4")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := io.ReadFull(resp.Body, make([]byte, 4)); err != nil || time.Since(start) > 200*time.Millisecond {
		t.Fatalf("first chunk held back by the proxy (%v, %v)", time.Since(start), err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	if got := srv.ProxyRequests() - before; got < 5 {
		t.Fatalf("ProxyRequests grew by %d, want at least 5", got)
	}
}

func TestHTTPProxyAuth(t *testing.T) {
	failures := srv.ProxyAuthFailures()
	noCreds := proxied(t, "http://"+srv.ProxyAddr, false)
	resp, _ := get(t, noCreds, srv.HTTPURL+"/get")
	if resp.StatusCode != http.StatusProxyAuthRequired || !strings.HasPrefix(resp.Header.Get("Proxy-Authenticate"), "Basic ") {
		t.Fatalf("plain without creds: %d %q", resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
	}
	if _, err := noCreds.Get(srv.TLSURL + "/get"); err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
		t.Fatalf("CONNECT without creds: %v", err)
	}
	bad := proxied(t, "http://puser:wrong@"+srv.ProxyAddr, false)
	if resp, _ := get(t, bad, srv.HTTPURL+"/get"); resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if got := srv.ProxyAuthFailures() - failures; got != 3 {
		t.Fatalf("ProxyAuthFailures grew by %d, want 3", got)
	}

	// Raw CONNECT shows the 407 status line clients have to handle.
	conn, err := net.Dial("tcp", srv.ProxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host := strings.TrimPrefix(srv.TLSURL, "https://")
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
	line := make([]byte, 12)
	if _, err := io.ReadFull(conn, line); err != nil || string(line) != "HTTP/1.1 407" {
		t.Fatalf("raw CONNECT: %q %v", line, err)
	}
}

func TestProxyWithoutAuth(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if strings.Contains(s.ProxyURL, "@") || strings.Contains(s.SOCKS5URL, "@") {
		t.Fatalf("URLs carry credentials: %s %s", s.ProxyURL, s.SOCKS5URL)
	}
	for _, u := range []string{s.ProxyURL, s.SOCKS5URL} {
		pu, _ := url.Parse(u)
		tr := &http.Transport{Proxy: http.ProxyURL(pu), TLSClientConfig: s.TLSClientConfig()}
		c := &http.Client{Transport: tr}
		get(t, c, s.HTTPURL+"/get")
		get(t, c, s.TLSURL+"/get")
		tr.CloseIdleConnections()
	}
	if s.ProxyRequests() != 2 || s.SOCKS5Tunnels() != 2 {
		t.Fatalf("proxy %d, socks %d", s.ProxyRequests(), s.SOCKS5Tunnels())
	}
}

func TestSOCKS5(t *testing.T) {
	conns, tunnels := srv.SOCKS5Conns(), srv.SOCKS5Tunnels()
	c := proxied(t, srv.SOCKS5URL, true)
	if _, body := get(t, c, srv.HTTPURL+"/x/proto"); string(body) != "HTTP/1.1" {
		t.Fatalf("plain via SOCKS5: %q", body)
	}
	if _, body := get(t, c, srv.TLSURL+"/x/proto"); string(body) != "HTTP/2.0" {
		t.Fatalf("TLS via SOCKS5: %q", body)
	}
	// Remote name resolution (socks5h-style): localhost resolves to IPv4.
	localhost := strings.Replace(srv.HTTPURL, "127.0.0.1", "localhost", 1)
	get(t, c, localhost+"/get")
	if srv.SOCKS5Tunnels()-tunnels != 3 || srv.SOCKS5Conns()-conns != 3 {
		t.Fatalf("tunnels +%d conns +%d, want 3 each", srv.SOCKS5Tunnels()-tunnels, srv.SOCKS5Conns()-conns)
	}

	for _, u := range []string{"socks5://" + srv.SOCKS5Addr, "socks5://suser:nope@" + srv.SOCKS5Addr} {
		if _, err := proxied(t, u, false).Get(srv.HTTPURL + "/get"); err == nil {
			t.Fatalf("%s: request succeeded without valid credentials", u)
		}
	}
	if srv.SOCKS5Tunnels()-tunnels != 3 {
		t.Fatalf("unauthenticated clients got tunnels")
	}
}

func TestProxiesStayOnLoopback(t *testing.T) {
	// 192.0.2.0/24 is TEST-NET-1: never routed, and refused before dialing.
	resp, body := get(t, proxied(t, srv.ProxyURL, false), "http://192.0.2.1:9/")
	if resp.StatusCode < 500 || !strings.Contains(string(body), "loopback") {
		t.Fatalf("plain: %d %s", resp.StatusCode, body)
	}
	for _, u := range []string{srv.ProxyURL, srv.SOCKS5URL} {
		if _, err := proxied(t, u, false).Get("https://192.0.2.1:9/"); err == nil {
			t.Fatalf("%s: tunnel to a non-loopback address succeeded", u)
		}
	}
}

// TestCloseEndsEverything parks a stalled request, a stalled body, a
// CONNECT tunnel and a SOCKS5 tunnel, then expects Close to end them all
// promptly and leave no goroutines behind.
func TestCloseEndsEverything(t *testing.T) {
	base := runtime.NumGoroutine()
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: s.TLSClientConfig(), DisableKeepAlives: true}
	h2 := &http2.Transport{TLSClientConfig: s.TLSClientConfig()}
	errs := make(chan error, 4)
	for _, c := range []*http.Client{{Transport: tr}, {Transport: h2}} {
		for _, u := range []string{s.HTTPURL + "/x/stall", s.TLSURL + "/x/stall-body"} {
			if c.Transport == h2 && strings.HasPrefix(u, "http:") {
				u = s.TLSURL + "/x/stall"
			}
			go func() {
				resp, err := c.Get(u)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				errs <- err
			}()
		}
	}
	var tunnels []net.Conn
	for _, p := range []string{"proxy", "socks5"} {
		var conn net.Conn
		if p == "proxy" {
			conn, err = net.Dial("tcp", s.ProxyAddr)
			if err == nil {
				host := strings.TrimPrefix(s.HTTPURL, "http://")
				fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", host, host)
				_, err = io.ReadFull(conn, make([]byte, 12))
			}
		} else {
			conn, err = net.Dial("tcp", s.SOCKS5Addr)
			if err == nil {
				port := conn.RemoteAddr().(*net.TCPAddr).Port // any live port will do
				if _, err = conn.Write([]byte{5, 1, 0}); err == nil {
					_, err = io.ReadFull(conn, make([]byte, 2))
				}
				if err == nil {
					_, err = conn.Write([]byte{5, 1, 0, 1, 127, 0, 0, 1, byte(port >> 8), byte(port)})
				}
				if err == nil {
					_, err = io.ReadFull(conn, make([]byte, 10))
				}
			}
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		tunnels = append(tunnels, conn)
	}
	// Let the stalled requests reach their handlers.
	deadline := time.Now().Add(5 * time.Second)
	for s.handler.running() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}

	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Close took %v", el)
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err == nil {
			t.Errorf("a stalled request completed after Close")
		}
	}
	for _, c := range tunnels {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("tunnel not closed by Close: %v", err)
		}
		c.Close()
	}
	if _, err := os.Stat(s.CAFile); !os.IsNotExist(err) {
		t.Errorf("CA file left behind: %v", err)
	}
	tr.CloseIdleConnections()
	h2.CloseIdleConnections()

	deadline = time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", base, n, buf[:runtime.Stack(buf, true)])
	}
}
