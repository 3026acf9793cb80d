//go:build fastreqtest

package main

import (
	"context"
	"testing"

	"github.com/fastreq/fastreq/core"
	"github.com/fastreq/fastreq/tests/testserver"
)

// The latency of one request at a time from Go, beside
// BenchmarkRoundTrip1 (submit and wait through the C ABI): their
// difference is the cost of the C interface.

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
