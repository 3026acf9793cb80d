package core

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	benchRequests    = 10_000
	benchConcurrency = 64
)

var benchJSON = []byte(`{"id":12345,"name":"fastreq","active":true,"tags":["http","client","bench"],"items":[1,2,3,4,5]}`)

// benchServer is a minimal local HTTP/1.1 server with a small JSON answer;
// its handler allocates nothing per request.
func benchServer(b *testing.B) *httptest.Server {
	length := strconv.Itoa(len(benchJSON))
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{length}
		w.Write(benchJSON)
	}))
	srv.Start()
	b.Cleanup(srv.Close)
	return srv
}

// measurePerRequest runs one batch per benchmark iteration and reports
// req/s and allocs/req next to the per-op numbers (one op is a batch of
// benchRequests requests).
func measurePerRequest(b *testing.B, batch func()) {
	b.ReportAllocs()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	mallocs := ms.Mallocs
	start := time.Now()
	for b.Loop() {
		batch()
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&ms)
	n := float64(b.N) * benchRequests
	b.ReportMetric(n/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(ms.Mallocs-mallocs)/n, "allocs/req")
}

// BenchmarkBatch10k: one batch of 10,000 GETs through the engine with
// concurrency 64, the client (and its connection pool) reused across
// iterations as a real program would.
func BenchmarkBatch10k(b *testing.B) {
	srv := benchServer(b)
	cfg := DefaultClientConfig()
	cfg.Concurrency = benchConcurrency
	c, err := NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	reqs := make([]RequestConfig, benchRequests)
	for i := range reqs {
		reqs[i] = RequestConfig{URL: srv.URL + "/json"}
	}
	ctx := context.Background()

	measurePerRequest(b, func() {
		batch, err := c.Submit(ctx, reqs, BatchOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for _, res := range batch.Wait() {
			if res.Error != nil || res.StatusCode != 200 || len(res.Content) != len(benchJSON) {
				b.Fatalf("request %d: status %d, %d bytes, error %v", res.Index, res.StatusCode, len(res.Content), res.Error)
			}
		}
	})
}

// BenchmarkNetHTTPLoop10k is the baseline: the same 10,000 GETs with a
// plain net/http client and 64 goroutines, bodies read in full.
func BenchmarkNetHTTPLoop10k(b *testing.B) {
	srv := benchServer(b)
	tr := &http.Transport{MaxIdleConnsPerHost: benchConcurrency, DisableCompression: true}
	hc := &http.Client{Transport: tr}
	b.Cleanup(tr.CloseIdleConnections)
	url := srv.URL + "/json"

	measurePerRequest(b, func() {
		var next atomic.Int64
		var failed atomic.Value
		var wg sync.WaitGroup
		for range benchConcurrency {
			wg.Go(func() {
				for next.Add(1) <= benchRequests {
					resp, err := hc.Get(url)
					if err != nil {
						failed.Store(err)
						return
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || len(body) != len(benchJSON) {
						failed.Store(fmt.Errorf("status %d, %d bytes, error %v", resp.StatusCode, len(body), err))
						return
					}
				}
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			b.Fatal(err)
		}
	})
}
