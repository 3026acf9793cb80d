package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoff(t *testing.T) {
	const almostOne = 1 - 1e-12
	p := RetryPolicy{Multiplier: time.Second, Jitter: 0.1, MaxDelay: 10 * time.Second}
	tests := []struct {
		name    string
		p       RetryPolicy
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{"first retry, no jitter draw", p, 0, 0.5, time.Second},
		{"first retry, lowest jitter", p, 0, 0, 900 * time.Millisecond},
		{"first retry, highest jitter", p, 0, almostOne, 1100 * time.Millisecond},
		{"second retry doubles", p, 1, 0.5, 2 * time.Second},
		{"third retry, lowest jitter", p, 2, 0, 3600 * time.Millisecond},
		{"fourth retry", p, 3, 0.5, 8 * time.Second},
		{"fourth retry, highest jitter", p, 3, almostOne, 8800 * time.Millisecond},
		{"capped at MaxDelay", p, 4, 0.5, 10 * time.Second},
		{"capped even with low jitter", p, 4, 0, 10 * time.Second},
		{"huge attempt capped", p, 500, 0.5, 10 * time.Second},
		{"no cap, huge attempt saturates", RetryPolicy{Multiplier: time.Second}, 200, 0.5, time.Duration(math.MaxInt64)},
		{"zero policy never waits", RetryPolicy{}, 3, 0.9, 0},
		{"no jitter ignores rnd", RetryPolicy{Multiplier: 100 * time.Millisecond}, 1, 0, 200 * time.Millisecond},
		{"full jitter can reach zero", RetryPolicy{Multiplier: time.Second, Jitter: 1}, 0, 0, 0},
		{"full jitter up to double", RetryPolicy{Multiplier: time.Second, Jitter: 1}, 0, almostOne, 2 * time.Second},
	}
	for _, tt := range tests {
		got := tt.p.Backoff(tt.attempt, tt.rnd)
		if diff := got - tt.want; diff < -time.Microsecond || diff > time.Microsecond {
			t.Errorf("%s: Backoff(%d, %v) = %v, want %v", tt.name, tt.attempt, tt.rnd, got, tt.want)
		}
	}
	// Jitter stays within its bounds for any draw.
	for i := 0; i <= 100; i++ {
		rnd := float64(i) / 101
		for attempt := range 4 {
			base := time.Second << attempt
			got := p.Backoff(attempt, rnd)
			if got < base*9/10 || got > base*11/10 || got > p.MaxDelay {
				t.Fatalf("Backoff(%d, %v) = %v, outside [%v, %v]", attempt, rnd, got, base*9/10, base*11/10)
			}
		}
	}
}

func TestDelayPrefersRetryAfter(t *testing.T) {
	p := RetryPolicy{Multiplier: time.Second, MaxDelay: 30 * time.Second}
	tests := []struct {
		name string
		ra   time.Duration
		has  bool
		want time.Duration
	}{
		{"no Retry-After: backoff", 5 * time.Second, false, 2 * time.Second},
		{"Retry-After wins over backoff", 5 * time.Second, true, 5 * time.Second},
		{"Retry-After 0 means at once", 0, true, 0},
		{"Retry-After capped", time.Hour, true, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := p.Delay(1, tt.ra, tt.has, 0.5); got != tt.want {
			t.Errorf("%s: Delay = %v, want %v", tt.name, got, tt.want)
		}
	}
	if got := (RetryPolicy{}).Delay(0, time.Hour, true, 0); got != time.Hour {
		t.Errorf("no MaxDelay: Delay = %v, want the full Retry-After", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"   ", 0, false},
		{"0", 0, true},
		{"120", 120 * time.Second, true},
		{" 3 ", 3 * time.Second, true},
		{"1.5", 1500 * time.Millisecond, true},
		{"-1", 0, false},
		{"NaN", 0, false},
		{"Inf", 0, false},
		{"1e300", time.Duration(math.MaxInt64), true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second, true},
		{now.Add(90 * time.Second).Format(time.ANSIC), 90 * time.Second, true},
		{now.Format(http.TimeFormat), 0, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true}, // past: no wait
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0, true},
		{"soon", 0, false},
		{"12 seconds", 0, false},
		{"Wed, 32 Oct 2015 07:28:00 GMT", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestRetryableStatusAndKind(t *testing.T) {
	for code := 100; code < 600; code++ {
		want := code == 429 || code == 500 || code == 502 || code == 503 || code == 504
		if got := RetryableStatus(code); got != want {
			t.Errorf("RetryableStatus(%d) = %v", code, got)
		}
	}
	retryable := map[ErrorKind]bool{KindTimeout: true, KindConnect: true, KindTransport: true, KindProxy: true, KindHTTPStatus: true}
	for _, k := range []ErrorKind{KindValidation, KindConfiguration, KindTimeout, KindConnect, KindTLS, KindProxy,
		KindTooManyRedirects, KindBodyTooLarge, KindCancelled, KindRetriesExhausted, KindTransport, KindHTTPStatus, KindIO} {
		if got := RetryableKind(k); got != retryable[k] {
			t.Errorf("RetryableKind(%s) = %v", k, got)
		}
	}
}

// ---- against the server ----

type attemptsDoc struct {
	Key      string `json:"key"`
	Attempts int    `json:"attempts"`
	Status   int    `json:"status"`
}

func TestRetryStatusThenSuccess(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3 })
	for _, status := range []int{500, 502, 503, 504, 429} {
		key := uniqueKey(t)
		res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/status-then-ok?fail=2&status=" + strconv.Itoa(status) + "&key=" + key})
		mustOK(t, res)
		if res.Attempts != 3 || ts.Hits(key) != 3 {
			t.Errorf("status %d: attempts %d, server hits %d; want 3 and 3", status, res.Attempts, ts.Hits(key))
		}
		var doc attemptsDoc
		if err := json.Unmarshal(res.Content, &doc); err != nil || doc.Attempts != 3 {
			t.Errorf("status %d: final body %q is not the third attempt's", status, res.Content)
		}
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	t.Run("zero beats a long backoff", func(t *testing.T) {
		t.Parallel()
		// A 30s backoff would blow the 10s budget: only Retry-After: 0 keeps it fast.
		c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 2; c.BackoffMultiplier = 30; c.MaxDelay = 60 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		key := uniqueKey(t)
		res, err := c.Do(ctx, RequestConfig{URL: ts.HTTPURL + "/x/status-then-ok?fail=2&retry_after=0&key=" + key})
		if err != nil {
			t.Fatalf("%v (Retry-After: 0 ignored?)", err)
		}
		if res.Attempts != 3 {
			t.Errorf("attempts %d", res.Attempts)
		}
	})
	t.Run("one second beats a tiny backoff", func(t *testing.T) {
		t.Parallel()
		c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 1; c.MaxDelay = 60 })
		key := uniqueKey(t)
		res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/status-then-ok?fail=1&retry_after=1&key=" + key})
		mustOK(t, res)
		if res.Elapsed < 950*time.Millisecond {
			t.Errorf("elapsed %v: the 1s Retry-After was not honoured", res.Elapsed)
		}
	})
}

func TestRetry429Exhausted(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 2 })
	key := uniqueKey(t)
	res, err := c.Do(testCtx(t), RequestConfig{URL: ts.HTTPURL + "/x/status-then-ok?fail=100&status=429&retry_after=0&key=" + key})
	if err == nil {
		t.Fatal("no error after every attempt got 429")
	}
	e := wantKind(t, res, KindRetriesExhausted)
	if e.Attempts != 3 || res.Attempts != 3 || ts.Hits(key) != 3 {
		t.Errorf("attempts %d/%d, hits %d; want 3", e.Attempts, res.Attempts, ts.Hits(key))
	}
	if e.Last == nil || e.Last.Kind != KindHTTPStatus || e.Last.Status != 429 {
		t.Fatalf("last error %+v, want http_status 429", e.Last)
	}
	if !errors.Is(err, ErrRetriesExhausted) || !errors.Is(err, ErrHTTPStatus) {
		t.Error("errors.Is does not see both retries_exhausted and http_status")
	}
	// The last response is kept.
	var doc attemptsDoc
	if res.StatusCode != 429 || json.Unmarshal(res.Content, &doc) != nil || doc.Attempts != 3 || res.Headers["retry-after"] != "0" {
		t.Errorf("kept response: status %d headers %v body %q", res.StatusCode, res.Headers, res.Content)
	}
}

func TestRetryAfterReportedOnLastError(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 0 })
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/status-then-ok?fail=1&status=503&retry_after=7&key=" + uniqueKey(t)})
	// With no retry made, the error is the status itself, not
	// retries_exhausted; the response is kept.
	e := wantKind(t, res, KindHTTPStatus)
	if e.RetryAfter != 7 || e.Status != 503 || e.Attempts != 1 || res.StatusCode != 503 {
		t.Errorf("error %+v status %d, want status 503 retry_after 7 after 1 attempt", e, res.StatusCode)
	}
}

func TestRetryConnectionReset(t *testing.T) {
	t.Parallel()
	for _, base := range []string{ts.HTTPURL, ts.TLSURL} { // HTTP/1.1 RST and HTTP/2 stream reset
		c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3 })
		key := uniqueKey(t)
		res := doReq(t, c, RequestConfig{URL: base + "/x/flaky-reset?fail=2&key=" + key})
		mustOK(t, res)
		if res.Attempts != 3 || ts.Hits(key) != 3 {
			t.Errorf("%s: attempts %d hits %d, want 3 and 3", base, res.Attempts, ts.Hits(key))
		}
	}
	// Resets that never stop: exhausted, with a transport error last.
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 2 })
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/reset"})
	e := wantKind(t, res, KindRetriesExhausted)
	if e.Last == nil || e.Last.Kind != KindTransport || res.Attempts != 3 {
		t.Errorf("last %+v attempts %d", e.Last, res.Attempts)
	}
}

// TestRetryResendsBodyIntact posts a body to a server that fails the first
// attempts (with a 503, then by dropping the connection after reading the
// body) and checks every attempt carried the whole body.
func TestRetryResendsBodyIntact(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var bodies [][]byte
	var types []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		types = append(types, r.Header.Get("Content-Type"))
		n := len(bodies)
		mu.Unlock()
		switch n % 3 {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		default:
			w.Write([]byte("ok"))
		}
	}))
	defer srv.Close()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3; c.Concurrency = 1 })

	payload := make([]byte, 256<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, tt := range []struct {
		name  string
		req   RequestConfig
		want  []byte
		ctype string
	}{
		// POST is replayed after a dropped connection only when asked.
		{"bytes", RequestConfig{Method: "POST", Content: payload, RetryNonIdempotent: ptr(true)}, payload, ""},
		{"form", RequestConfig{Method: "PUT", Data: FormData(Params{{"a", "1"}, {"b", "two"}})}, []byte("a=1&b=two"), "application/x-www-form-urlencoded"},
		{"json", RequestConfig{Method: "POST", JSON: json.RawMessage(`{"x":1}`), RetryNonIdempotent: ptr(true)}, []byte(`{"x":1}`), "application/json"},
	} {
		mu.Lock()
		bodies, types = nil, nil
		mu.Unlock()
		tt.req.URL = srv.URL
		res := doReq(t, c, tt.req)
		mustOK(t, res)
		mu.Lock()
		if res.Attempts != 3 || len(bodies) != 3 {
			t.Errorf("%s: attempts %d, server got %d bodies; want 3", tt.name, res.Attempts, len(bodies))
		}
		for i, b := range bodies {
			if !bytes.Equal(b, tt.want) {
				t.Errorf("%s: attempt %d carried %d bytes, want the %d sent", tt.name, i+1, len(b), len(tt.want))
			}
			if types[i] != tt.ctype {
				t.Errorf("%s: attempt %d content-type %q", tt.name, i+1, types[i])
			}
		}
		mu.Unlock()
	}
}

func TestRetryNeverForPermanentFailures(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3; c.MaxRedirects = 2 })
	tests := []struct {
		name     string
		req      RequestConfig
		kind     ErrorKind
		attempts int
	}{
		{"validation", RequestConfig{URL: "gopher://x"}, KindValidation, 0},
		{"tls", RequestConfig{URL: ts.TLSURL + "/x/json", VerifySSL: ptr(true)}, KindTLS, 1},
		{"redirect limit", RequestConfig{URL: ts.HTTPURL + "/x/redirect-loop"}, KindTooManyRedirects, 1},
		{"body too large", RequestConfig{URL: ts.HTTPURL + "/x/bytes/100", MaxBodySize: 10}, KindBodyTooLarge, 1},
		{"local io", RequestConfig{URL: ts.HTTPURL + "/x/json", OutputPath: "/nonexistent-dir/x"}, KindIO, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := doReq(t, c, tt.req)
			e := wantKind(t, res, tt.kind)
			if res.Attempts != tt.attempts {
				t.Errorf("%d attempts, want %d", res.Attempts, tt.attempts)
			}
			if e.Last != nil {
				t.Errorf("unexpected last error %+v", e.Last)
			}
		})
	}
	// Non-retryable statuses are plain responses after one attempt.
	key := uniqueKey(t)
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/status-then-ok?fail=1&status=501&key=" + key})
	if res.Error != nil || res.StatusCode != 501 || res.Attempts != 1 || ts.Hits(key) != 1 {
		t.Errorf("501: status %d attempts %d hits %d err %v", res.StatusCode, res.Attempts, ts.Hits(key), res.Error)
	}
}

func TestRetryThenPermanentFailureCountsAttempts(t *testing.T) {
	t.Parallel()
	// Attempt 1 gets a 503 (retried), attempt 2 a 200 whose body is over
	// the limit: that failure is final and reports both attempts.
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3; c.MaxBodySize = 5 })
	key := uniqueKey(t)
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/status-then-ok?fail=1&key=" + key})
	e := wantKind(t, res, KindBodyTooLarge)
	if res.Attempts != 2 || e.Attempts != 2 || ts.Hits(key) != 2 {
		t.Errorf("attempts %d/%d hits %d, want 2", res.Attempts, e.Attempts, ts.Hits(key))
	}
}

func TestRetryCancelledDuringBackoff(t *testing.T) {
	t.Parallel()
	// A long backoff after the first 503: cancelling must end the wait.
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3; c.BackoffMultiplier = 30; c.MaxDelay = 60 })
	key := uniqueKey(t)
	b, err := c.Submit(testCtx(t), []RequestConfig{{URL: ts.HTTPURL + "/x/status-then-ok?fail=5&key=" + key}}, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first attempt", func() bool { return ts.Hits(key) == 1 && slotsHeld(c) == 0 })
	b.Cancel()
	select {
	case <-b.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not interrupt the backoff")
	}
	res := b.Wait()[0]
	wantKind(t, res, KindCancelled)
	if ts.Hits(key) != 1 {
		t.Errorf("server saw %d attempts after cancel", ts.Hits(key))
	}
}

func TestMaxRetriesZeroMeansOneAttempt(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/x/status-then-ok?fail=1&key=", "/x/flaky-reset?fail=1&key="} {
		// A fresh client: net/http itself replays an idempotent request
		// whose reused keep-alive connection breaks, which would hide the
		// reset from the engine.
		c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 0 })
		key := uniqueKey(t)
		res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + path + key})
		if res.Error == nil || res.Attempts != 1 || ts.Hits(key) != 1 {
			t.Errorf("%s: attempts %d hits %d error %v; want one failed attempt", path, res.Attempts, ts.Hits(key), res.Error)
		}
	}
	// The final retryable status is kept as the response.
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 0 })
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/status-then-ok?fail=1&key=" + uniqueKey(t)})
	if res.StatusCode != 503 {
		t.Errorf("status %d, want the 503 kept", res.StatusCode)
	}
}

// ---- policy timing on a fake clock ----

// TestRetryTimingSynthetic runs the whole retry path (attempt, classify,
// Delay, sleep, token, slot) inside a synctest bubble with an in-memory
// transport, so the delays between attempts are exact.
func TestRetryTimingSynthetic(t *testing.T) {
	tests := []struct {
		name string
		edit func(*ClientConfig)
		// respond answers attempt n (1-based) at fake time now.
		respond func(n int, now time.Time) (status int, retryAfter string)
		want    []time.Duration // attempt start times, from the first attempt
	}{
		{
			name:    "exponential backoff",
			edit:    func(c *ClientConfig) { c.BackoffMultiplier = 1; c.MaxDelay = 60 },
			respond: failFirst(3, ""),
			want:    []time.Duration{0, 1 * time.Second, 3 * time.Second, 7 * time.Second},
		},
		{
			name:    "backoff capped by max_delay",
			edit:    func(c *ClientConfig) { c.BackoffMultiplier = 1; c.MaxDelay = 1.5 },
			respond: failFirst(3, ""),
			want:    []time.Duration{0, 1 * time.Second, 2500 * time.Millisecond, 4 * time.Second},
		},
		{
			name:    "Retry-After seconds",
			edit:    func(c *ClientConfig) { c.BackoffMultiplier = 1; c.MaxDelay = 60 },
			respond: failFirst(2, "7"),
			want:    []time.Duration{0, 7 * time.Second, 14 * time.Second},
		},
		{
			name: "Retry-After HTTP date",
			edit: func(c *ClientConfig) { c.BackoffMultiplier = 1; c.MaxDelay = 60 },
			respond: func(n int, now time.Time) (int, string) {
				if n == 1 {
					return 503, now.Add(4 * time.Second).UTC().Format(http.TimeFormat)
				}
				return 200, ""
			},
			want: []time.Duration{0, 4 * time.Second},
		},
		{
			name:    "Retry-After capped by max_delay",
			edit:    func(c *ClientConfig) { c.BackoffMultiplier = 1; c.MaxDelay = 2 },
			respond: failFirst(1, "3600"),
			want:    []time.Duration{0, 2 * time.Second},
		},
		{
			name:    "retries wait for the rate limit too",
			edit:    func(c *ClientConfig) { c.BackoffMultiplier = 0; c.RateLimit = 2; c.RateLimitBurst = 1 },
			respond: failFirst(2, ""),
			want:    []time.Duration{0, 500 * time.Millisecond, time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := testConfig()
				cfg.MaxRetries = 5
				tt.edit(&cfg)
				c, err := NewClient(cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				var starts []time.Time
				injectTransport(c, rtFunc(func(r *http.Request) (*http.Response, error) {
					starts = append(starts, time.Now())
					status, ra := tt.respond(len(starts), time.Now())
					h := http.Header{}
					if ra != "" {
						h.Set("Retry-After", ra)
					}
					return fakeResponse(r, status, h, "x"), nil
				}))
				res, err := c.Do(context.Background(), RequestConfig{URL: "http://fake.test/"})
				if err != nil {
					t.Fatal(err)
				}
				var got []time.Duration
				for _, s := range starts {
					got = append(got, s.Sub(starts[0]))
				}
				if len(got) != len(tt.want) {
					t.Fatalf("attempts at %v, want %v", got, tt.want)
				}
				for i := range got {
					if got[i] != tt.want[i] {
						t.Fatalf("attempts at %v, want %v", got, tt.want)
					}
				}
				if res.Attempts != len(tt.want) || res.Elapsed != tt.want[len(tt.want)-1] {
					t.Errorf("attempts %d elapsed %v", res.Attempts, res.Elapsed)
				}
			})
		})
	}
}

func failFirst(n int, retryAfter string) func(int, time.Time) (int, string) {
	return func(attempt int, _ time.Time) (int, string) {
		if attempt <= n {
			return 503, retryAfter
		}
		return 200, ""
	}
}

// TestRetryJitterSynthetic checks, on the fake clock, that the jittered
// delay of the engine's real retry path stays within its bounds.
func TestRetryJitterSynthetic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MaxRetries = 1
		cfg.BackoffMultiplier = 1
		cfg.Jitter = 0.5
		cfg.MaxDelay = 60
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var mu sync.Mutex
		first := map[string]time.Time{}
		var delays []time.Duration
		injectTransport(c, rtFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			if start, ok := first[r.URL.Path]; ok {
				delays = append(delays, time.Since(start))
				return fakeResponse(r, 200, nil, ""), nil
			}
			first[r.URL.Path] = time.Now()
			return fakeResponse(r, 503, nil, ""), nil
		}))
		rs := make([]RequestConfig, 50)
		for i := range rs {
			rs[i].URL = "http://fake.test/" + strconv.Itoa(i)
		}
		b := mustSubmit(t, c, rs)
		b.Wait()
		if len(delays) != 50 {
			t.Fatalf("%d retries, want 50", len(delays))
		}
		distinct := map[time.Duration]bool{}
		for _, d := range delays {
			if d < 500*time.Millisecond || d > 1500*time.Millisecond {
				t.Errorf("retry delay %v outside 1s ± 50%%", d)
			}
			distinct[d] = true
		}
		if len(distinct) < 10 {
			t.Errorf("only %d distinct delays in 50 retries: jitter not applied", len(distinct))
		}
	})
}
