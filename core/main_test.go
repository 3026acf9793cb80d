package core

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fastreq/fastreq/tests/testserver"
)

// ts is the one set of test servers every test of the package shares:
// plain HTTP/1.1 + h2c, TLS h2, TLS HTTP/1.1-only, an HTTP forward proxy
// that demands Basic credentials (ts.ProxyURL carries them, ts.ProxyAddr
// does not) and a SOCKS5 proxy without authentication.
//
// Its counters (ProxyRequests, SOCKS5Tunnels, Hits) are shared: tests that
// compare them before and after do not call t.Parallel, and Hits keys come
// from uniqueKey.
var ts *testserver.Servers

// The HTTP proxy's credentials. The password is distinctive so that tests
// can assert it never leaks into error text.
const (
	testProxyUser = "fq-user"
	testProxyPass = "Pr0xyS3cretPW"
)

func TestMain(m *testing.M) {
	s, err := testserver.New(testserver.Options{ProxyUser: testProxyUser, ProxyPass: testProxyPass})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting test servers:", err)
		os.Exit(1)
	}
	ts = s
	code := m.Run()
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "closing test servers:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// testConfig is DefaultClientConfig tuned for fast, deterministic tests:
// no retries unless a test asks, tiny backoff, no jitter, the test CA
// accepted (verify_ssl=false) and a generous per-attempt timeout as a
// safety net so that a bug hangs one test for seconds, not the run.
func testConfig() ClientConfig {
	cfg := DefaultClientConfig()
	cfg.VerifySSL = ptr(false)
	cfg.MaxRetries = 0
	cfg.BackoffMultiplier = 0.001
	cfg.Jitter = 0
	cfg.MaxDelay = 1
	cfg.Timeout = 10
	return cfg
}

// newTestClient builds a client from testConfig, edited by edit, and closes
// it when the test ends, checking that no concurrency slot leaked.
func newTestClient(t testing.TB, edit func(*ClientConfig)) *Client {
	t.Helper()
	cfg := testConfig()
	if edit != nil {
		edit(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if n := len(c.limiter.slots); n != 0 {
			t.Errorf("%d concurrency slot(s) still held after Close", n)
		}
	})
	return c
}

// testCtx bounds one call so that a hang fails the test instead of the run.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// doReq runs one request and returns its response (with Error set when it
// failed); it fails the test only if there is no response at all.
func doReq(t testing.TB, c *Client, req RequestConfig) *NormalizedResponse {
	t.Helper()
	res, err := c.Do(testCtx(t), req)
	if res == nil {
		t.Fatalf("Do(%s): no response, error %v", req.URL, err)
	}
	if (err == nil) != (res.Error == nil) {
		t.Fatalf("Do(%s): returned error %v but res.Error is %v", req.URL, err, res.Error)
	}
	return res
}

// mustOK asserts a successful 200 response.
func mustOK(t testing.TB, res *NormalizedResponse) {
	t.Helper()
	if res.Error != nil {
		t.Fatalf("request %d failed: %s (kind %s)", res.Index, res.Error, res.Error.Kind)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("request %d: status %d, want 200; body %.200q", res.Index, res.StatusCode, res.Content)
	}
}

// wantKind asserts that res failed with kind.
func wantKind(t testing.TB, res *NormalizedResponse, kind ErrorKind) *Error {
	t.Helper()
	if res.Error == nil {
		t.Fatalf("request %d: succeeded with status %d, want a %s error", res.Index, res.StatusCode, kind)
	}
	if res.Error.Kind != kind {
		last := ""
		if res.Error.Last != nil {
			last = fmt.Sprintf(" (last: %s %q)", res.Error.Last.Kind, res.Error.Last.Message)
		}
		t.Fatalf("request %d: error kind %s (%q)%s, want %s", res.Index, res.Error.Kind, res.Error.Message, last, kind)
	}
	return res.Error
}

// decodeEcho parses a /x/echo response.
func decodeEcho(t testing.TB, res *NormalizedResponse) testserver.EchoResponse {
	t.Helper()
	mustOK(t, res)
	var e testserver.EchoResponse
	if err := json.Unmarshal(res.Content, &e); err != nil {
		t.Fatalf("decoding /x/echo body %.200q: %v", res.Content, err)
	}
	return e
}

// header returns the first value of a header /x/echo saw ("" if none).
func echoHeader(e testserver.EchoResponse, name string) string {
	if vs := e.Headers[strings.ToLower(name)]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

var keySeq atomic.Int64

// uniqueKey is a fresh per-key counter name for /x/status-then-ok and
// /x/flaky-reset, whose counts outlive a test.
func uniqueKey(t testing.TB) string {
	return strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + strconv.FormatInt(keySeq.Add(1), 10)
}

// waitFor polls cond until it holds, failing the test after a few seconds.
// It waits for a state (requests in flight), never for a policy's timing.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// slotsHeld is the number of concurrency slots taken right now.
func slotsHeld(c *Client) int { return len(c.limiter.slots) }

// rtFunc is an in-memory http.RoundTripper.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// injectTransport makes every plain-route request of c (no proxy, no
// per-request protocol override) go through rt instead of the network, so
// that policy tests can run inside a synctest bubble on a fake clock.
func injectTransport(c *Client, rt http.RoundTripper) {
	b := c.backend
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, plain := range []bool{true, false} {
		b.pool[Route{VerifySSL: boolOr(c.cfg.VerifySSL, true), Protocol: c.protocol, Plain: plain}] = rt
	}
}

// fakeResponse builds a response for rtFunc transports.
func fakeResponse(r *http.Request, status int, header http.Header, body string) *http.Response {
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// mustSubmit submits a batch, failing the test if Submit refuses it.
func mustSubmit(t testing.TB, c *Client, rs []RequestConfig) *Batch {
	t.Helper()
	b, err := c.Submit(context.Background(), rs, BatchOptions{})
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return b
}

// reqs builds n GETs of url.
func reqs(n int, url string) []RequestConfig {
	out := make([]RequestConfig, n)
	for i := range out {
		out[i] = RequestConfig{URL: url, ID: "r" + strconv.Itoa(i)}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
