//go:build fastreqtest

package main

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/fastreq/fastreq/tests/testserver"
)

// Benchmarks of the C ABI itself, called from C (testhooks.go's C loops)
// the way a C or ctypes caller calls it. tests/c/bench_abi.c measures the
// same from a C program against the built libfastreq.so:
//
//	go test -run '^$' -bench . ./capi/

// BenchmarkABIEmptyCall: one C-to-Go call that does almost nothing
// (fastreq_batch_done on a finished batch: a registry lookup and a queue
// check), from a C loop. ns/op is the fixed cost of crossing the ABI.
func BenchmarkABIEmptyCall(b *testing.B) {
	h, cleanup := hookSyntheticBatch(0, nil)
	defer cleanup()
	b.ResetTimer()
	if got := hookDoneLoop(h, b.N); got != int64(b.N) {
		b.Fatalf("fastreq_batch_done summed to %d, want %d", got, b.N)
	}
}

// BenchmarkABIWaitZero: fastreq_batch_wait(b, 0) on a finished batch,
// from a C loop.
func BenchmarkABIWaitZero(b *testing.B) {
	h, cleanup := hookSyntheticBatch(0, nil)
	defer cleanup()
	b.ResetTimer()
	if got := hookWait0Loop(h, b.N); got != 0 {
		b.Fatalf("fastreq_batch_wait summed to %d", got)
	}
}

// BenchmarkABIEmptyCallFromGo: the same call from Go, through the C
// symbol: a Go-to-C and a C-to-Go transition per call.
func BenchmarkABIEmptyCallFromGo(b *testing.B) {
	h, cleanup := hookSyntheticBatch(0, nil)
	defer cleanup()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hookBatchDone(h)
	}
}

// BenchmarkDrain100k drains 100,000 waiting RESULT records (a 195-byte
// body and its metadata JSON each, as the engine queues them) through
// fastreq_batch_drain in chunks of 256, releasing each chunk with
// fastreq_records_release, from C. Only the drain and release loop is
// timed; ns/record is the figure to read.
func BenchmarkDrain100k(b *testing.B) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h, cleanup := hookSyntheticBatch(n, testserver.JSONBody)
		runtime.GC() // the set-up's garbage is not the drain's cost
		b.StartTimer()
		got := hookDrainAll(h, 256)
		b.StopTimer()
		cleanup()
		if got != n {
			b.Fatalf("drained %d records, want %d", got, n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}

// BenchmarkRoundTrip1: submit one request to the local server's /x/json,
// wait for it, drain and release its record, free the batch - one at a
// time, all through the C ABI.
func BenchmarkRoundTrip1(b *testing.B) {
	ts := testServers(b)
	c, rc, e := hookClientNew([]byte(`{"backend":"http1","max_retries":0,"timeout":30}`))
	if rc != 0 {
		b.Fatalf("fastreq_client_new = %d: %s", rc, e)
	}
	defer hookClientClose(c)
	req := []byte(`[{"url":"` + ts.HTTPURL + `/x/json"}]`)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h, rc, e := hookSubmit(c, req, 0)
		if rc != 0 {
			b.Fatalf("fastreq_batch_submit = %d: %s", rc, e)
		}
		if n := hookBatchWait(h, -1); n != 1 {
			b.Fatalf("fastreq_batch_wait = %d", n)
		}
		if n := hookDrainAll(h, 16); n != 1 {
			b.Fatalf("drained %d", n)
		}
		hookBatchFree(h)
	}
}

// BenchmarkSubmitDecode100k: fastreq_batch_submit's decoding and
// validation of 100,000 URL-only requests (the JSON fastreq(urls) sends),
// against a closed client so that nothing runs. B/op is the garbage a
// large batch makes before its first request starts.
func BenchmarkSubmitDecode100k(b *testing.B) {
	var buf []byte
	buf = append(buf, '[')
	for i := range 100000 {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = fmt.Appendf(buf, `{"url":"http://127.0.0.1:18080/json?i=%d"}`, i)
	}
	buf = append(buf, ']')
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if rc, e := hookValidateRequests(buf, 0); rc != rcClosed {
			b.Fatalf("submit = %d (%s), want ECLOSED", rc, e)
		}
	}
}
