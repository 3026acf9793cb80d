//go:build fastreqtest

package main

import (
	"context"
	"testing"

	"github.com/fastreq/fastreq/core"
	"github.com/fastreq/fastreq/tests/testserver"
)

// The latency of one request at a time, split by where the caller waits.
// Together with BenchmarkRoundTrip1 (submit and wait both through the C
// ABI) they locate the cost of crossing into Go. On a 2-core machine:
// core.Do ~50-80 us, the engine with the completion queue in pure Go
// ~66-87 us, a submit through the ABI with the wait in Go ~76-113 us, and
// the full ABI round trip ~165-260 us. The extra time goes to a wait made
// by a thread that called in from C. Blocking that wait in the kernel
// (ppoll on the eventfd) instead of on a channel was tried: slower still.

// latencyClient is the engine client of the pure-Go latency benchmarks,
// with the settings BenchmarkRoundTrip1 gives the C ABI.
func latencyClient(b *testing.B) (*testserver.Servers, *core.Client) {
	cfg := core.DefaultClientConfig()
	cfg.Backend = "http1"
	cfg.MaxRetries = 0
	cfg.Timeout = 30
	c, err := core.NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return testServers(b), c
}

// BenchmarkLatencyCoreDo is core.Do, one request at a time.
func BenchmarkLatencyCoreDo(b *testing.B) {
	ts, c := latencyClient(b)
	defer c.Close()
	for i := 0; i < b.N; i++ {
		if _, err := c.Do(context.Background(), core.RequestConfig{URL: ts.HTTPURL + "/x/json"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLatencyCoreQueue is the engine plus the completion queue, with
// no call from C.
func BenchmarkLatencyCoreQueue(b *testing.B) {
	ts, c := latencyClient(b)
	defer c.Close()
	for i := 0; i < b.N; i++ {
		q := newQueue(1)
		bt, err := c.Submit(context.Background(), []core.RequestConfig{{URL: ts.HTTPURL + "/x/json"}}, core.BatchOptions{OnResult: q.pushResult, OnChunk: q.pushChunk})
		if err != nil {
			b.Fatal(err)
		}
		q.wait(-1)
		<-bt.Done()
		recs := make([]_Ctype_fastreq_record_t, 4)
		n := q.drain(recs)
		for j := 0; j < n; j++ {
			releaseRecord(&recs[j])
		}
		q.close()
	}
}

// BenchmarkLatencySubmitABIWaitGo submits through the C ABI and waits on
// the queue from Go.
func BenchmarkLatencySubmitABIWaitGo(b *testing.B) {
	ts := testServers(b)
	c, _, _ := hookClientNew([]byte(`{"backend":"http1","max_retries":0,"timeout":30}`))
	defer hookClientClose(c)
	req := []byte(`[{"url":"` + ts.HTTPURL + `/x/json"}]`)
	for i := 0; i < b.N; i++ {
		h, _, _ := hookSubmit(c, req, 0)
		bt, _ := lookupAs[*batch](h)
		bt.q.wait(-1)
		hookDrainAll(h, 16)
		hookBatchFree(h)
	}
}
