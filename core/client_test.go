package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"iter"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fastreq/fastreq/tests/testserver"
)

// ---- configuration ----

func TestDefaultClientConfigMatchesPythonAPI(t *testing.T) {
	want := ClientConfig{
		Backend:                 "auto",
		Concurrency:             20,
		MaxRetries:              3,
		RateLimit:               0, // None: unlimited
		RateLimitBurst:          5,
		HTTP2:                   ptr(true),
		FollowRedirects:         ptr(true),
		MaxRedirects:            20,
		VerifySSL:               ptr(true),
		Timeout:                 0, // None: no limit
		ConnectTimeout:          30,
		ReadTimeout:             300,
		CircuitBreakerThreshold: 20,
		CircuitBreakerCooldown:  30,
		DNSCacheTTL:             60,
		RandomUserAgent:         ptr(true),
		RandomProxy:             false,
		ProxySelection:          "round_robin",
		ProxyCooldown:           60,
		MaxBodySize:             1 << 30,
		BackoffMultiplier:       1.0,
		Jitter:                  0.1,
		MaxDelay:                60,
		Debug:                   false,
		Verbose:                 ptr(true),
	}
	if got := DefaultClientConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("DefaultClientConfig() =\n%+v\nwant\n%+v", got, want)
	}
	// The defaults are valid as they are and normalize changes nothing.
	cfg := DefaultClientConfig()
	if err := cfg.normalize(); err != nil {
		t.Fatalf("normalize(defaults): %v", err)
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("normalize changed the defaults: %+v", cfg)
	}
}

func TestClientConfigJSONNames(t *testing.T) {
	b, err := json.Marshal(DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"backend", "concurrency", "max_connections", "max_retries", "rate_limit", "rate_limit_burst",
		"http2", "follow_redirects", "verify_ssl", "timeout", "cookies", "random_user_agent", "random_proxy",
		"proxies", "proxy_selection", "proxy_cooldown", "webshare_file", "headers", "debug", "verbose"} {
		if _, ok := m[name]; !ok {
			t.Errorf("ClientConfig JSON has no %q (the Python name)", name)
		}
	}
	if _, ok := m["Logger"]; ok {
		t.Error("Logger must not be part of the JSON form")
	}
}

func TestNormalizeFillsZeroValues(t *testing.T) {
	var cfg ClientConfig
	if err := cfg.normalize(); err != nil {
		t.Fatalf("normalize(zero): %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"backend", cfg.Backend, "auto"},
		{"concurrency", cfg.Concurrency, DefaultConcurrency},
		{"rate_limit_burst", cfg.RateLimitBurst, DefaultRateLimitBurst},
		{"max_redirects", cfg.MaxRedirects, DefaultMaxRedirects},
		{"max_body_size", cfg.MaxBodySize, int64(DefaultMaxBodySize)},
		{"proxy_selection", cfg.ProxySelection, "round_robin"},
		// Zero means something for these, so they stay zero.
		{"max_retries", cfg.MaxRetries, 0},
		{"rate_limit", cfg.RateLimit, 0.0},
		{"timeout", cfg.Timeout, 0.0},
		{"proxy_cooldown", cfg.ProxyCooldown, 0.0},
		{"backoff_multiplier", cfg.BackoffMultiplier, 0.0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// NewClient reports the normalized settings; a nil HTTP2 means true,
	// so the zero config may negotiate HTTP/2 (auto).
	c, err := NewClient(ClientConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Config(); got.Concurrency != DefaultConcurrency || got.Backend != "auto" {
		t.Errorf("Config() = %+v, want the defaults filled in", got)
	}
	if c.protocol != ProtocolAuto {
		t.Errorf("protocol = %v, want auto for the zero config", c.protocol)
	}
	if !boolOr(c.Config().VerifySSL, true) {
		t.Error("the zero config must verify certificates")
	}
	if cap(c.limiter.slots) != DefaultConcurrency || c.limiter.bucket != nil {
		t.Errorf("limiter: %d slots, bucket %v; want %d slots, no bucket", cap(c.limiter.slots), c.limiter.bucket, DefaultConcurrency)
	}
}

func TestNewClientRejectsBadSettings(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name  string
		edit  func(*ClientConfig)
		kind  ErrorKind
		field string
	}{
		{"negative concurrency", func(c *ClientConfig) { c.Concurrency = -1 }, KindValidation, "concurrency"},
		{"huge concurrency", func(c *ClientConfig) { c.Concurrency = 2_000_000 }, KindValidation, "concurrency"},
		{"negative max_connections", func(c *ClientConfig) { c.MaxConnections = -1 }, KindValidation, "max_connections"},
		{"max_connections below concurrency", func(c *ClientConfig) { c.Concurrency = 10; c.MaxConnections = 9 }, KindValidation, "max_connections"},
		{"huge max_connections", func(c *ClientConfig) { c.MaxConnections = 2_000_000 }, KindValidation, "max_connections"},
		{"negative max_retries", func(c *ClientConfig) { c.MaxRetries = -1 }, KindValidation, "max_retries"},
		{"negative rate_limit", func(c *ClientConfig) { c.RateLimit = -5 }, KindValidation, "rate_limit"},
		{"NaN rate_limit", func(c *ClientConfig) { c.RateLimit = nan }, KindValidation, "rate_limit"},
		{"infinite rate_limit", func(c *ClientConfig) { c.RateLimit = inf }, KindValidation, "rate_limit"},
		{"negative rate_limit_burst", func(c *ClientConfig) { c.RateLimitBurst = -1 }, KindValidation, "rate_limit_burst"},
		{"negative timeout", func(c *ClientConfig) { c.Timeout = -0.5 }, KindValidation, "timeout"},
		{"NaN timeout", func(c *ClientConfig) { c.Timeout = nan }, KindValidation, "timeout"},
		{"negative max_body_size", func(c *ClientConfig) { c.MaxBodySize = -1 }, KindValidation, "max_body_size"},
		{"negative max_redirects", func(c *ClientConfig) { c.MaxRedirects = -3 }, KindValidation, "max_redirects"},
		{"negative jitter", func(c *ClientConfig) { c.Jitter = -0.1 }, KindValidation, "jitter"},
		{"jitter above 1", func(c *ClientConfig) { c.Jitter = 1.5 }, KindValidation, "jitter"},
		{"NaN jitter", func(c *ClientConfig) { c.Jitter = nan }, KindValidation, "jitter"},
		{"negative backoff_multiplier", func(c *ClientConfig) { c.BackoffMultiplier = -1 }, KindValidation, "backoff_multiplier"},
		{"NaN max_delay", func(c *ClientConfig) { c.MaxDelay = nan }, KindValidation, "max_delay"},
		{"negative proxy_cooldown", func(c *ClientConfig) { c.ProxyCooldown = -1 }, KindValidation, "proxy_cooldown"},
		{"bad proxy_selection", func(c *ClientConfig) { c.ProxySelection = "fastest" }, KindConfiguration, "proxy_selection"},
		{"unknown backend", func(c *ClientConfig) { c.Backend = "curl" }, KindConfiguration, "backend"},
		{"bad header name", func(c *ClientConfig) { c.Headers = map[string]string{"Bad Name": "x"} }, KindValidation, "headers"},
		{"bad header value", func(c *ClientConfig) { c.Headers = map[string]string{"X-A": "a\r\nb"} }, KindValidation, "headers"},
		{"bad cookie value", func(c *ClientConfig) { c.Cookies = map[string]string{"a": "b;c"} }, KindValidation, "cookies"},
		{"bad cookie name", func(c *ClientConfig) { c.Cookies = map[string]string{"": "v"} }, KindValidation, "cookies"},
		{"bad proxy", func(c *ClientConfig) { c.Proxies = []string{"not a proxy"} }, KindValidation, "proxy"},
		{"missing webshare_file", func(c *ClientConfig) { c.WebshareFile = filepath.Join(t.TempDir(), "nope.txt") }, KindConfiguration, "webshare_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultClientConfig()
			tt.edit(&cfg)
			c, err := NewClient(cfg)
			if err == nil {
				c.Close()
				t.Fatal("NewClient accepted the setting")
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if fe.Kind != tt.kind || fe.Field != tt.field {
				t.Errorf("got kind %s field %q (%s), want kind %s field %q", fe.Kind, fe.Field, fe.Message, tt.kind, tt.field)
			}
			named := map[string]bool{"proxy": false, "headers": false, "cookies": false} // their messages name the header or cookie
			if _, ok := named[tt.field]; !ok && !strings.Contains(fe.Message, tt.field) {
				t.Errorf("message %q does not name %q", fe.Message, tt.field)
			}
		})
	}
}

// ---- Do and batches ----

func TestDoOneRequest(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	res, err := c.Do(testCtx(t), RequestConfig{URL: ts.HTTPURL + "/x/json", ID: "one"})
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	mustOK(t, res)
	if !bytes.Equal(res.Content, testserver.JSONBody) {
		t.Errorf("content = %q, want the /x/json document", res.Content)
	}
	if res.Index != 0 || res.ID != "one" || res.Attempts != 1 {
		t.Errorf("index %d id %q attempts %d, want 0 \"one\" 1", res.Index, res.ID, res.Attempts)
	}
	if res.ContentLength != int64(len(testserver.JSONBody)) {
		t.Errorf("content_length = %d, want %d", res.ContentLength, len(testserver.JSONBody))
	}
	if res.Headers["content-type"] != "application/json" {
		t.Errorf("content-type = %q", res.Headers["content-type"])
	}
	if res.URL != ts.HTTPURL+"/x/json" || res.HTTPVersion != "HTTP/1.1" {
		t.Errorf("url %q version %q", res.URL, res.HTTPVersion)
	}
	if res.Elapsed <= 0 {
		t.Errorf("elapsed = %v, want > 0", res.Elapsed)
	}
}

func TestDoErrorStatusIsAResponse(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3 })
	for _, code := range []int{404, 501} { // 501 is not a retryable status
		res, err := c.Do(testCtx(t), RequestConfig{URL: ts.HTTPURL + "/status/" + strconv.Itoa(code)})
		if err != nil {
			t.Fatalf("status %d: Do returned error %v", code, err)
		}
		if res.StatusCode != code || res.Attempts != 1 {
			t.Errorf("status %d, attempts %d; want %d, 1", res.StatusCode, res.Attempts, code)
		}
	}
}

func TestSubmitResultsEveryIndexOnceAndWaitInOrder(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 8 })
	const n = 60
	rs := make([]RequestConfig, n)
	for i := range rs {
		rs[i] = RequestConfig{URL: ts.HTTPURL + "/x/echo", Params: Params{{"i", strconv.Itoa(i)}}, ID: "id" + strconv.Itoa(i)}
	}
	b, err := c.Submit(testCtx(t), rs, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b.Len() != n {
		t.Errorf("Len = %d, want %d", b.Len(), n)
	}
	seen := make([]*NormalizedResponse, n)
	count := 0
	for res := range b.Results() {
		count++
		if res.Index < 0 || res.Index >= n {
			t.Fatalf("result index %d out of range", res.Index)
		}
		if seen[res.Index] != nil {
			t.Fatalf("index %d delivered twice", res.Index)
		}
		seen[res.Index] = res
	}
	if count != n {
		t.Fatalf("Results delivered %d results, want %d", count, n)
	}
	select {
	case <-b.Done():
	default:
		t.Error("Done not closed after Results was closed")
	}
	all := b.Wait()
	if len(all) != n {
		t.Fatalf("Wait returned %d results", len(all))
	}
	for i, res := range all {
		if res != seen[i] {
			t.Errorf("Wait()[%d] is not the result delivered on Results for index %d", i, i)
		}
		if res.Index != i || res.ID != "id"+strconv.Itoa(i) {
			t.Errorf("Wait()[%d] has index %d id %q", i, res.Index, res.ID)
		}
		e := decodeEcho(t, res)
		if got := e.Query["i"]; len(got) != 1 || got[0] != strconv.Itoa(i) {
			t.Errorf("result %d answered request %v", i, got)
		}
	}
}

func TestSubmitEmptyBatch(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	b, err := c.Submit(testCtx(t), nil, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Wait(); len(got) != 0 {
		t.Errorf("Wait = %v, want empty", got)
	}
	if _, open := <-b.Results(); open {
		t.Error("Results of an empty batch is not closed")
	}
}

func TestSubmitOnResult(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 4 })
	const n = 20
	var mu sync.Mutex
	got := map[int]int{}
	b, err := c.Submit(testCtx(t), reqs(n, ts.HTTPURL+"/x/json"), BatchOptions{OnResult: func(r *NormalizedResponse) {
		mu.Lock()
		defer mu.Unlock()
		if r.Error == nil && r.StatusCode == 200 {
			got[r.Index]++
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if b.Results() != nil {
		t.Error("Results is not nil with OnResult set")
	}
	if w := b.Wait(); w != nil {
		t.Errorf("Wait = %v, want nil with OnResult set", w)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Errorf("OnResult saw %d distinct successful indexes, want %d", len(got), n)
	}
	for i, k := range got {
		if k != 1 {
			t.Errorf("OnResult called %d times for index %d", k, i)
		}
	}
}

// HeadersOnFailure: successes come without Headers, a failure (here a
// 503 that stays one) with them.
func TestSubmitHeadersOnFailure(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	rs := []RequestConfig{{URL: ts.HTTPURL + "/x/json"}, {URL: ts.HTTPURL + "/status/503"}}
	var mu sync.Mutex
	got := map[int]*NormalizedResponse{}
	b, err := c.Submit(testCtx(t), rs, BatchOptions{HeadersOnFailure: true, OnResult: func(r *NormalizedResponse) {
		mu.Lock()
		got[r.Index] = r
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	<-b.Done()
	mu.Lock()
	defer mu.Unlock()
	if ok := got[0]; ok == nil || ok.Error != nil || ok.StatusCode != 200 || ok.Headers != nil || len(ok.Content) == 0 {
		t.Errorf("success: %+v, want status 200, a body and no headers", ok)
	}
	if bad := got[1]; bad == nil || bad.Error == nil || bad.StatusCode != 503 || len(bad.Headers) == 0 {
		t.Errorf("failure: %+v, want a 503 error with its headers", bad)
	}
	// Without it, successes carry their headers.
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json"})
	if len(res.Headers) == 0 {
		t.Error("a success without HeadersOnFailure has no headers")
	}
}

func TestBatchCancelMidBatch(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 2; c.MaxRetries = 3 })
	b, err := c.Submit(testCtx(t), reqs(6, ts.HTTPURL+"/x/stall"), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two requests in flight", func() bool { return slotsHeld(c) == 2 })
	start := time.Now()
	b.Cancel()
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("batch still running 5s after Cancel")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancel took %v", d)
	}
	for _, res := range b.Wait() {
		e := wantKind(t, res, KindCancelled)
		if !errors.Is(res.Err(), ErrCancelled) || !strings.Contains(e.Message, "cancel") {
			t.Errorf("request %d: error %q", res.Index, e.Message)
		}
		if res.Attempts > 1 {
			t.Errorf("request %d: %d attempts, a cancelled request must not be retried", res.Index, res.Attempts)
		}
		if res.StatusCode != 0 {
			t.Errorf("request %d: status %d", res.Index, res.StatusCode)
		}
	}
	if n := slotsHeld(c); n != 0 {
		t.Errorf("%d slots held after the batch ended", n)
	}
	// The client still works after one of its batches was cancelled.
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json"}))
}

func TestBatchCallerDeadlineIsATimeout(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 1; c.MaxRetries = 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	b, err := c.Submit(ctx, reqs(3, ts.HTTPURL+"/x/stall"), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range b.Wait() {
		wantKind(t, res, KindTimeout)
		if !errors.Is(res.Err(), ErrTimeout) {
			t.Errorf("errors.Is(ErrTimeout) false for %v", res.Error)
		}
		if res.Attempts > 1 {
			t.Errorf("request %d: %d attempts after the caller's deadline", res.Index, res.Attempts)
		}
	}
}

func TestCloseCancelsInFlightAndRefusesNewWork(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 2 })
	b, err := c.Submit(testCtx(t), reqs(5, ts.HTTPURL+"/x/stall"), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two requests in flight", func() bool { return slotsHeld(c) == 2 })
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return within 5s with requests in flight")
	}
	// Close waits for batches: the batch is already done.
	select {
	case <-b.Done():
	default:
		t.Fatal("batch not done when Close returned")
	}
	for _, res := range b.Wait() {
		wantKind(t, res, KindCancelled)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Submit(testCtx(t), reqs(1, ts.HTTPURL+"/x/json"), BatchOptions{}); !errors.Is(err, ErrCancelled) {
		t.Errorf("Submit after Close: %v, want a cancelled error", err)
	}
	if res, err := c.Do(testCtx(t), RequestConfig{URL: ts.HTTPURL + "/x/json"}); !errors.Is(err, ErrCancelled) || res != nil {
		t.Errorf("Do after Close: %v %v, want a cancelled error", res, err)
	}
}

func TestStrictValidationRunsNothing(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	key := uniqueKey(t)
	good := ts.HTTPURL + "/x/status-then-ok?fail=0&key=" + key
	rs := []RequestConfig{{URL: good}, {URL: good}, {URL: "ftp://example.com/file"}, {URL: good}}
	b, err := c.Submit(testCtx(t), rs, BatchOptions{StrictValidation: true})
	if b != nil {
		t.Error("Submit returned a batch despite an invalid request")
	}
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != KindValidation || fe.Field != "url" {
		t.Fatalf("error %v, want a validation error on url", err)
	}
	if !strings.Contains(fe.Message, "request 2") {
		t.Errorf("message %q does not name request 2", fe.Message)
	}
	// Submit returned before starting anything, so nothing can arrive later.
	if n := ts.Hits(key); n != 0 {
		t.Errorf("server saw %d requests from a rejected batch", n)
	}
	// The client is still usable.
	mustOK(t, doReq(t, c, RequestConfig{URL: good}))
}

func TestInvalidRequestFailsAlone(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	rs := []RequestConfig{
		{URL: ts.HTTPURL + "/x/json"},
		{URL: ts.HTTPURL + "/x/json", Method: "BAD METHOD"},
		{URL: ts.HTTPURL + "/x/json"},
		{URL: ts.HTTPURL + "/x/json", Headers: map[string]string{"X-Bad": "a\nb"}},
		{URL: "not a url", ID: "bad-url"},
	}
	b, err := c.Submit(testCtx(t), rs, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := b.Wait()
	mustOK(t, res[0])
	mustOK(t, res[2])
	for i, field := range map[int]string{1: "method", 3: "headers", 4: "url"} {
		e := wantKind(t, res[i], KindValidation)
		if e.Field != field {
			t.Errorf("request %d: field %q, want %q", i, e.Field, field)
		}
		if res[i].Attempts != 0 {
			t.Errorf("request %d: %d attempts for an invalid request", i, res[i].Attempts)
		}
	}
	if res[4].ID != "bad-url" || res[4].Index != 4 {
		t.Errorf("invalid request's result has index %d and id %q, want 4 and its own id", res[4].Index, res[4].ID)
	}
}

// requestsOf yields rs through one reused RequestConfig, as a decoder
// does, then err (if any).
func requestsOf(rs []RequestConfig, err error) iter.Seq2[*RequestConfig, error] {
	return func(yield func(*RequestConfig, error) bool) {
		var cfg RequestConfig
		for _, r := range rs {
			cfg = r
			if !yield(&cfg, nil) {
				return
			}
		}
		if err != nil {
			yield(nil, err)
		}
	}
}

func TestSubmitSeqReusedStruct(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	var rs []RequestConfig
	for i := range 20 {
		rs = append(rs, RequestConfig{URL: ts.HTTPURL + "/x/echo", ID: "id" + strconv.Itoa(i),
			Params: Params{{"i", strconv.Itoa(i)}}, Headers: map[string]string{"X-I": strconv.Itoa(i)}})
	}
	b, err := c.SubmitSeq(testCtx(t), requestsOf(rs, nil), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range b.Wait() {
		mustOK(t, r)
		var echo testserver.EchoResponse
		if err := json.Unmarshal(r.Content, &echo); err != nil {
			t.Fatal(err)
		}
		want := strconv.Itoa(i)
		if r.ID != rs[i].ID || len(echo.Query["i"]) != 1 || echo.Query["i"][0] != want || len(echo.Headers["x-i"]) != 1 || echo.Headers["x-i"][0] != want {
			t.Errorf("result %d: id %q, query %v, x-i %v: another request's settings", i, r.ID, echo.Query, echo.Headers["x-i"])
		}
	}
}

func TestSubmitSeqErrorRunsNothing(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	key := uniqueKey(t)
	good := RequestConfig{URL: ts.HTTPURL + "/x/status-then-ok?fail=0&key=" + key}
	bad := errors.New("the producer failed")
	for _, strict := range []bool{false, true} {
		// With StrictValidation the invalid request comes first, and the
		// producer's error still wins: a broken input is reported as such.
		rs := []RequestConfig{good, {URL: "ftp://x/"}, good}
		b, err := c.SubmitSeq(testCtx(t), requestsOf(rs, bad), BatchOptions{StrictValidation: strict})
		if b != nil || err != bad {
			t.Errorf("strict=%v: SubmitSeq = %v, %v; want the producer's error and no batch", strict, b, err)
		}
	}
	if n := ts.Hits(key); n != 0 {
		t.Errorf("server saw %d requests from refused batches", n)
	}
}

// TestQueuedRequestFootprint holds 20,000 requests in a batch behind a
// gate of one and measures the live heap they keep: a large batch of
// plain GETs must not keep a RequestConfig (~250 B) per request.
func TestQueuedRequestFootprint(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 1; c.MaxRetries = 0 })
	const n = 20000
	before := liveHeap()
	rs := make([]RequestConfig, n)
	for i := range rs {
		rs[i].URL = srv.URL + "/item/" + strconv.Itoa(i) // a string of its own, as decoded ones are
	}
	b, err := c.Submit(testCtx(t), rs, BatchOptions{OnResult: func(*NormalizedResponse) {}})
	if err != nil {
		t.Fatal(err)
	}
	rs = nil
	per := float64(liveHeap()-before) / n
	b.Cancel()
	<-b.Done()
	// ~80 B of prepared, 8 of the batch's slice, the URL text (~36 B).
	if per > 160 {
		t.Errorf("a queued request keeps %.0f B of heap, want <= 160", per)
	}
	t.Logf("%.0f B per queued request", per)
}

func liveHeap() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// ---- the concurrency gate ----

// inflightServer counts the requests it is serving at once; each is held
// for hold so that the client has the chance to overrun its gate.
type inflightServer struct {
	*httptest.Server
	cur, max, total atomic.Int64
}

func newInflightServer(t *testing.T, hold time.Duration) *inflightServer {
	s := &inflightServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.cur.Add(1)
		defer s.cur.Add(-1)
		s.total.Add(1)
		for {
			m := s.max.Load()
			if n <= m || s.max.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-time.After(hold):
		case <-r.Context().Done():
		}
		w.Write([]byte("ok"))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestConcurrencyGateSharedAcrossBatches(t *testing.T) {
	t.Parallel()
	srv := newInflightServer(t, 30*time.Millisecond)
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 3 })
	var wg sync.WaitGroup
	for range 2 { // two batches of one client at once
		wg.Go(func() {
			b, err := c.Submit(testCtx(t), reqs(12, srv.URL), BatchOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			for _, r := range b.Wait() {
				if r.Error != nil {
					t.Errorf("request %d: %v", r.Index, r.Error)
				}
			}
		})
	}
	wg.Wait()
	if got := srv.total.Load(); got != 24 {
		t.Errorf("server saw %d requests, want 24", got)
	}
	if got := srv.max.Load(); got != 3 {
		t.Errorf("server saw at most %d requests at once, want exactly 3 (the client's concurrency)", got)
	}
}

// TestConcurrencyGateSynthetic runs the gate on a fake clock: every request
// takes one (fake) second, so 10 requests through 3 slots take exactly 4s,
// whichever way the two batches share the slots.
func TestConcurrencyGateSynthetic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := NewClient(func() ClientConfig { cfg := testConfig(); cfg.Concurrency = 3; return cfg }())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var cur, peak atomic.Int64
		injectTransport(c, rtFunc(func(r *http.Request) (*http.Response, error) {
			n := cur.Add(1)
			defer cur.Add(-1)
			for m := peak.Load(); n > m && !peak.CompareAndSwap(m, n); m = peak.Load() {
			}
			time.Sleep(time.Second)
			return fakeResponse(r, 200, nil, "ok"), nil
		}))
		start := time.Now()
		b1 := mustSubmit(t, c, reqs(6, "http://fake.test/a"))
		b2 := mustSubmit(t, c, reqs(4, "http://fake.test/b"))
		for _, b := range []*Batch{b1, b2} {
			for _, r := range b.Wait() {
				if r.Error != nil || r.StatusCode != 200 {
					t.Errorf("request failed: %v", r.Error)
				}
			}
		}
		if d := time.Since(start); d != 4*time.Second {
			t.Errorf("10 one-second requests through 3 slots took %v, want 4s", d)
		}
		if p := peak.Load(); p != 3 {
			t.Errorf("peak in flight %d, want 3", p)
		}
	})
}

// ---- proxies ----

// These tests compare the shared proxies' counters, so they do not run in
// parallel (parallel tests only start once every serial test is done).

func TestProxyPlainHTTP(t *testing.T) {
	c := newTestClient(t, nil)
	before := ts.ProxyRequests()
	for range 3 {
		res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/echo", Proxy: ts.ProxyURL})
		e := decodeEcho(t, res)
		if e.Path != "/x/echo" {
			t.Errorf("path %q", e.Path)
		}
	}
	if got := ts.ProxyRequests() - before; got != 3 {
		t.Errorf("proxy forwarded %d requests, want 3", got)
	}
}

func TestProxyConnectToTLS(t *testing.T) {
	c := newTestClient(t, nil)
	before := ts.ProxyRequests()
	res := doReq(t, c, RequestConfig{URL: ts.TLSURL + "/x/proto", Proxy: ts.ProxyURL})
	mustOK(t, res)
	if got := ts.ProxyRequests() - before; got != 1 {
		t.Errorf("proxy saw %d CONNECTs, want 1", got)
	}
	// backend auto negotiates h2 inside the tunnel.
	if string(res.Content) != "HTTP/2.0" || res.HTTPVersion != "HTTP/2.0" {
		t.Errorf("through the tunnel: server saw %q, client %q; want HTTP/2.0", res.Content, res.HTTPVersion)
	}
}

func TestProxyWrongCredentials(t *testing.T) {
	c := newTestClient(t, nil)
	wrongPW := "WrongPassw0rdXYZ"
	for _, tt := range []struct{ name, target, proxy, secret string }{
		{"plain http, wrong password", ts.HTTPURL + "/x/json", "http://" + testProxyUser + ":" + wrongPW + "@" + ts.ProxyAddr, wrongPW},
		{"CONNECT, wrong password", ts.TLSURL + "/x/json", "http://" + testProxyUser + ":" + wrongPW + "@" + ts.ProxyAddr, wrongPW},
		{"plain http, no credentials", ts.HTTPURL + "/x/json", "http://" + ts.ProxyAddr, ""},
		{"CONNECT, host:port:user:pass form", ts.TLSURL + "/x/json", ts.ProxyAddr + ":" + testProxyUser + ":" + wrongPW, wrongPW},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fails := ts.ProxyAuthFailures()
			res := doReq(t, c, RequestConfig{URL: tt.target, Proxy: tt.proxy})
			if res.Error == nil {
				t.Fatalf("got status %d, want a proxy error", res.StatusCode)
			}
			if !errors.Is(res.Err(), ErrProxy) {
				t.Fatalf("error %s %q is not a proxy error", res.Error.Kind, res.Error.Message)
			}
			if got := ts.ProxyAuthFailures() - fails; got != 1 {
				t.Errorf("proxy refused %d requests, want 1", got)
			}
			if tt.secret == "" {
				return
			}
			blob, _ := json.Marshal(res.Error)
			for _, text := range []string{res.Error.Error(), res.Error.Message, res.Error.Proxy, string(blob)} {
				if strings.Contains(text, tt.secret) {
					t.Errorf("the proxy password leaks into %q", text)
				}
			}
			var pe *Error
			for e := res.Error; e != nil; e = e.Last {
				if e.Kind == KindProxy {
					pe = e
				}
			}
			if pe == nil || !strings.Contains(pe.Proxy, ts.ProxyAddr) {
				t.Errorf("proxy error does not name the proxy: %+v", pe)
			}
		})
	}
}

func TestProxySOCKS5(t *testing.T) {
	c := newTestClient(t, nil)
	before := ts.SOCKS5Tunnels()
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json", Proxy: ts.SOCKS5URL}))
	res := doReq(t, c, RequestConfig{URL: ts.TLSURL + "/x/proto", Proxy: ts.SOCKS5URL})
	mustOK(t, res)
	if got := ts.SOCKS5Tunnels() - before; got != 2 {
		t.Errorf("SOCKS5 proxy opened %d tunnels, want 2 (one per target)", got)
	}
}

func TestProxyPoolSkipsDeadProxy(t *testing.T) {
	dead := "http://127.0.0.1:1" // nothing listens on port 1
	c := newTestClient(t, func(c *ClientConfig) {
		c.Proxies = []string{dead, ts.ProxyURL}
		c.ProxyCooldown = 60
		c.MaxRetries = 2
		c.Concurrency = 1
	})
	before := ts.ProxyRequests()
	b, err := c.Submit(testCtx(t), reqs(6, ts.HTTPURL+"/x/json"), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	attempts := 0
	for _, res := range b.Wait() {
		mustOK(t, res)
		attempts += res.Attempts
	}
	// Round robin starts with the dead proxy: the first request fails over
	// to the live one, and the dead one then sits out its cooldown.
	if attempts != 7 {
		t.Errorf("%d attempts in all, want 7 (one failover)", attempts)
	}
	if got := ts.ProxyRequests() - before; got != 6 {
		t.Errorf("live proxy forwarded %d requests, want 6", got)
	}
	pool := c.proxies
	deadURL, _ := ParseProxy(dead)
	i := pool.index(deadURL)
	pool.mu.Lock()
	cooling := time.Now().Before(pool.until[i])
	pool.mu.Unlock()
	if !cooling {
		t.Error("the dead proxy is not cooling down")
	}
}

func TestProxyExplicitWinsOverPool(t *testing.T) {
	c := newTestClient(t, func(c *ClientConfig) { c.Proxies = []string{"http://127.0.0.1:1"} })
	before := ts.ProxyRequests()
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json", Proxy: ts.ProxyURL})
	mustOK(t, res)
	if res.Attempts != 1 {
		t.Errorf("%d attempts, want 1: the pool's dead proxy must not be tried", res.Attempts)
	}
	if got := ts.ProxyRequests() - before; got != 1 {
		t.Errorf("explicit proxy forwarded %d requests, want 1", got)
	}
	// Without the explicit proxy the pool's (dead) proxy is used: never direct.
	res = doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json"})
	if !errors.Is(res.Err(), ErrProxy) {
		t.Errorf("request through the dead pool proxy: %v, want a proxy error", res.Err())
	}
}

// ---- User-Agent ----

func TestUserAgentRotationFromList(t *testing.T) {
	t.Parallel()
	list := []string{"UA-one/1.0", "UA-two/2.0"}
	c := newTestClient(t, func(c *ClientConfig) { c.UserAgents = list; c.Concurrency = 4 })
	b, err := c.Submit(testCtx(t), reqs(40, ts.HTTPURL+"/x/echo"), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, res := range b.Wait() {
		seen[echoHeader(decodeEcho(t, res), "User-Agent")]++
	}
	if len(seen) != 2 || seen[list[0]] == 0 || seen[list[1]] == 0 {
		t.Errorf("User-Agents sent: %v, want both of %v and nothing else", seen, list)
	}
}

func TestUserAgentCallerWins(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.UserAgents = []string{"rotated/1"} })
	e := decodeEcho(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/echo", Headers: map[string]string{"user-agent": "mine/1"}}))
	if got := e.Headers["user-agent"]; len(got) != 1 || got[0] != "mine/1" {
		t.Errorf("User-Agent %v, want only the caller's", got)
	}
	// A client default header wins over rotation too.
	c2 := newTestClient(t, func(c *ClientConfig) {
		c.UserAgents = []string{"rotated/1"}
		c.Headers = map[string]string{"User-Agent": "client-default/1"}
	})
	e = decodeEcho(t, doReq(t, c2, RequestConfig{URL: ts.HTTPURL + "/x/echo"}))
	if got := echoHeader(e, "user-agent"); got != "client-default/1" {
		t.Errorf("User-Agent %q, want the client's header", got)
	}
}

func TestUserAgentFixedWhenRotationOff(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.RandomUserAgent = ptr(false); c.UserAgents = []string{"ignored/1"} })
	e := decodeEcho(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/echo"}))
	if got := echoHeader(e, "user-agent"); got != "fastreq/"+Version {
		t.Errorf("User-Agent %q, want fastreq/%s", got, Version)
	}
}

func TestUserAgentDefaultListUsed(t *testing.T) {
	t.Setenv("USER_AGENTS", "") // the built-in list, whatever the environment
	c := newTestClient(t, nil)
	e := decodeEcho(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/echo"}))
	ua := echoHeader(e, "user-agent")
	for _, d := range DefaultUserAgents {
		if ua == d {
			return
		}
	}
	t.Errorf("User-Agent %q is not from DefaultUserAgents", ua)
}

func TestProxySOCKS5AuthFailureIsProxyError(t *testing.T) {
	t.Parallel()
	srv, err := testserver.New(testserver.Options{SOCKS5User: "u", SOCKS5Pass: "right-secret"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newTestClient(t, nil)
	wrong := strings.Replace(srv.SOCKS5URL, "right-secret", "wrong-secret", 1)
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json", Proxy: wrong})
	e := wantKind(t, res, KindProxy)
	if strings.Contains(e.Error(), "wrong-secret") || strings.Contains(e.Proxy, "wrong-secret") {
		t.Errorf("the proxy password leaked: %q / %q", e.Error(), e.Proxy)
	}
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json", Proxy: srv.SOCKS5URL}))
}

func TestHeadResponseWithContentLength(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/bytes/1000", Method: "HEAD"})
	mustOK(t, res)
	if res.StatusCode != 200 || len(res.Content) != 0 || res.Headers["content-length"] != "1000" {
		t.Errorf("HEAD: status %d, %d body bytes, content-length %q", res.StatusCode, len(res.Content), res.Headers["content-length"])
	}
}

// A request that adds no header gets the shared header set that is what
// it would have built itself, whatever the client's headers and
// User-Agent settings.
func TestPlainHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*ClientConfig)
	}{
		{"defaults", func(*ClientConfig) {}},
		{"one agent", func(c *ClientConfig) { c.UserAgents = []string{"ua/1"} }},
		{"no rotation", func(c *ClientConfig) { c.RandomUserAgent = ptr(false) }},
		{"client headers", func(c *ClientConfig) {
			c.Headers = map[string]string{"User-Agent": "mine", "accept-encoding": "identity", "X-A": "1", "Host": "h.test"}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultClientConfig()
			tc.edit(&cfg)
			c, err := NewClient(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.plainHeaders == nil {
				t.Fatal("no plain headers")
			}
			for i := range 40 {
				url := "http://a.test/x"
				switch i % 4 {
				case 1:
					url = "https://a.test:/x?q=1"
				case 2:
					url = "http://[::1]:/"
				case 3:
					url = "HTTP://A.test:8080"
				}
				p, err := prepare(0, &RequestConfig{URL: url})
				if err != nil {
					t.Fatal(err)
				}
				got, shared, err := c.newRequest(context.Background(), p)
				if err != nil || !shared {
					t.Fatalf("newRequest: shared %v, error %v", shared, err)
				}
				plain := c.plainHeaders
				c.plainHeaders = nil
				want, shared, err := c.newRequest(context.Background(), p)
				c.plainHeaders = plain
				if err != nil || shared {
					t.Fatalf("newRequest without plain headers: shared %v, error %v", shared, err)
				}
				if got.Host != want.Host {
					t.Errorf("Host %q, want %q", got.Host, want.Host)
				}
				if g, w := *got, *want; true {
					g.Header, w.Header = nil, nil
					if !reflect.DeepEqual(g, w) {
						t.Errorf("request %+v, want %+v", g, w)
					}
				}
				// The User-Agent may be another pick from the same list.
				if c.agents != nil && len(c.agents.list) > 1 && got.Header.Get("User-Agent") != want.Header.Get("User-Agent") {
					if !slices.Contains(c.agents.list, got.Header.Get("User-Agent")) {
						t.Errorf("User-Agent %q is not in the list", got.Header.Get("User-Agent"))
					}
					want.Header.Set("User-Agent", got.Header.Get("User-Agent"))
				}
				if !reflect.DeepEqual(got.Header, want.Header) {
					t.Fatalf("headers %v, want %v", got.Header, want.Header)
				}
			}
		})
	}
}
