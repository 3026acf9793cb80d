package core_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync/atomic"
	"time"

	"github.com/fastreq/fastreq/core"
)

// exampleServer answers every request with a small JSON document; a real
// program would call real URLs.
func exampleServer() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	}))
}

func ExampleNewClient() {
	srv := exampleServer()
	defer srv.Close()

	cfg := core.DefaultClientConfig() // the Python API's defaults
	cfg.Concurrency = 50
	cfg.Timeout = 10 // seconds per attempt
	client, err := core.NewClient(cfg)
	if err != nil {
		panic(err)
	}
	defer client.Close()

	res, err := client.Do(context.Background(), core.RequestConfig{URL: srv.URL + "/hello"})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.StatusCode, res.Headers["content-type"], string(res.Content))
	// Output: 200 application/json {"path":"/hello"}
}

func ExampleNewClient_invalidSetting() {
	cfg := core.DefaultClientConfig()
	cfg.Backend = "urllib"
	_, err := core.NewClient(cfg)
	var fe *core.Error
	if errors.As(err, &fe) {
		fmt.Println(fe.Kind, fe.Field)
	}
	// Output: configuration backend
}

func ExampleClient_Do() {
	srv := exampleServer()
	defer srv.Close()
	client, _ := core.NewClient(core.DefaultClientConfig())
	defer client.Close()

	// An HTTP error status is a response, not an error.
	res, err := client.Do(context.Background(), core.RequestConfig{URL: srv.URL + "/missing"})
	fmt.Println(res.StatusCode, err)

	// A failure is an *core.Error with a Kind.
	_, err = client.Do(context.Background(), core.RequestConfig{URL: "ftp://example.com/"})
	fmt.Println(errors.Is(err, core.ErrValidation))
	// Output:
	// 404 <nil>
	// true
}

func ExampleClient_Submit() {
	srv := exampleServer()
	defer srv.Close()
	client, _ := core.NewClient(core.DefaultClientConfig())
	defer client.Close()

	reqs := make([]core.RequestConfig, 100)
	for i := range reqs {
		reqs[i] = core.RequestConfig{URL: fmt.Sprintf("%s/item/%d", srv.URL, i)}
	}
	batch, err := client.Submit(context.Background(), reqs, core.BatchOptions{})
	if err != nil {
		panic(err)
	}
	// Results arrive as they complete, in any order.
	ok := 0
	for res := range batch.Results() {
		if res.Error == nil && res.StatusCode == 200 {
			ok++
		}
	}
	fmt.Println(ok, "of", batch.Len(), "succeeded")
	// Output: 100 of 100 succeeded
}

func ExampleBatch_Wait() {
	srv := exampleServer()
	defer srv.Close()
	client, _ := core.NewClient(core.DefaultClientConfig())
	defer client.Close()

	batch, _ := client.Submit(context.Background(), []core.RequestConfig{
		{URL: srv.URL + "/a"},
		{URL: srv.URL + "/missing"},
		{URL: srv.URL + "/c", Method: "post", JSON: []byte(`{"n":1}`)},
	}, core.BatchOptions{})
	// Wait returns every result in request order.
	for _, res := range batch.Wait() {
		fmt.Println(res.Index, res.StatusCode, string(res.Content))
	}
	// Output:
	// 0 200 {"path":"/a"}
	// 1 404 404 page not found
	//
	// 2 200 {"path":"/c"}
}

func ExampleBatchOptions_onResult() {
	srv := exampleServer()
	defer srv.Close()
	client, _ := core.NewClient(core.DefaultClientConfig())
	defer client.Close()

	var done atomic.Int64
	reqs := []core.RequestConfig{{URL: srv.URL + "/1"}, {URL: srv.URL + "/2"}, {URL: srv.URL + "/3"}}
	batch, _ := client.Submit(context.Background(), reqs, core.BatchOptions{
		// Called from the engine's goroutines as each request completes.
		OnResult: func(res *core.NormalizedResponse) { done.Add(1) },
	})
	batch.Wait()
	fmt.Println(done.Load(), "callbacks")
	// Output: 3 callbacks
}

func ExampleClientConfig_rateLimit() {
	srv := exampleServer()
	defer srv.Close()

	cfg := core.DefaultClientConfig()
	cfg.RateLimit = 20     // requests per second, shared by every batch of the client
	cfg.RateLimitBurst = 1 // no burst: one request every 50ms
	client, _ := core.NewClient(cfg)
	defer client.Close()

	start := time.Now()
	reqs := []core.RequestConfig{{URL: srv.URL}, {URL: srv.URL}, {URL: srv.URL}, {URL: srv.URL}, {URL: srv.URL}}
	batch, _ := client.Submit(context.Background(), reqs, core.BatchOptions{})
	batch.Wait()
	fmt.Println("5 requests in at least 200ms:", time.Since(start) >= 200*time.Millisecond)
	// Output: 5 requests in at least 200ms: true
}

func ExampleRequestConfig_proxy() {
	// A toy forward proxy: it answers requests for absolute URLs itself.
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.IsAbs() {
			proxied.Add(1)
		}
		fmt.Fprint(w, "via proxy")
	}))
	defer proxy.Close()

	// A pool of proxies, rotated round robin, for every request...
	cfg := core.DefaultClientConfig()
	cfg.Proxies = []string{proxy.Listener.Addr().String()} // host:port, host:port:user:pass or a URL
	client, _ := core.NewClient(cfg)
	defer client.Close()
	res, _ := client.Do(context.Background(), core.RequestConfig{URL: "http://example.invalid/"})
	fmt.Println(res.StatusCode, string(res.Content))

	// ...and an explicit proxy for one request, which wins over the pool.
	res, _ = client.Do(context.Background(), core.RequestConfig{URL: "http://example.invalid/", Proxy: proxy.URL})
	fmt.Println(res.StatusCode, proxied.Load())
	// Output:
	// 200 via proxy
	// 200 2
}

func ExampleRetryPolicy_Backoff() {
	p := core.RetryPolicy{MaxRetries: 5, Multiplier: time.Second, Jitter: 0.1, MaxDelay: 10 * time.Second}
	for attempt := range 5 {
		// rnd picks where in the jitter range the delay falls; 0.5 is the middle.
		fmt.Println(attempt, p.Backoff(attempt, 0.5), p.Backoff(attempt, 0))
	}
	// Output:
	// 0 1s 900ms
	// 1 2s 1.8s
	// 2 4s 3.6s
	// 3 8s 7.2s
	// 4 10s 10s
}

func ExampleParseRetryAfter() {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, v := range []string{"120", "Thu, 01 Jan 2026 12:00:30 GMT", "yesterday"} {
		d, ok := core.ParseRetryAfter(v, now)
		fmt.Println(d, ok)
	}
	// Output:
	// 2m0s true
	// 30s true
	// 0s false
}

func ExampleError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	cfg := core.DefaultClientConfig()
	cfg.MaxRetries = 2
	cfg.BackoffMultiplier = 0.01 // 10ms, 20ms
	client, _ := core.NewClient(cfg)
	defer client.Close()

	res, err := client.Do(context.Background(), core.RequestConfig{URL: srv.URL})
	var fe *core.Error
	if errors.As(err, &fe) && fe.Kind == core.KindRetriesExhausted {
		fmt.Println(fe.Attempts, fe.Last.Kind, fe.Last.Status, res.StatusCode)
	}
	fmt.Println(errors.Is(err, core.ErrRetriesExhausted))
	// Output:
	// 3 http_status 503 503
	// true
}

func ExampleBackendNames() {
	names := core.BackendNames()
	sort.Strings(names)
	fmt.Println(names)
	// Output: [auto http1 http2 http3]
}
