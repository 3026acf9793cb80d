//go:build fastreqtest

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/fastreq/fastreq/tests/testserver"
)

// bigBufferCount is how many mapped big buffers are live.
func bigBufferCount() int {
	bigBuffers.Lock()
	defer bigBuffers.Unlock()
	return len(bigBuffers.live)
}

// Big bodies travel in mapped buffers: read straight into one when the
// length is known, copied into one when it is not (chunked), released by
// fastreq_records_release or by fastreq_free, and never leaked, also when
// the read fails halfway.
func TestBigBodies(t *testing.T) {
	srv := testServers(t)
	// Declares 1 MiB, sends 200 KiB, then drops the connection.
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(1<<20))
		w.WriteHeader(http.StatusOK)
		w.Write(testserver.PatternBytes(200 << 10))
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer cut.Close()

	h := newClient(t, `{"max_retries":0,"http2":false}`)

	sizes := []int{1 << 20, bigBuffer, bigBuffer - 1, 300000}
	for _, freeEach := range []bool{false, true} {
		buffersBefore, bigBefore := liveBuffers.Load(), bigBufferCount()
		var reqs []string
		for _, n := range sizes {
			reqs = append(reqs, fmt.Sprintf(`{"url":"%s/x/bytes/%d"}`, srv.HTTPURL, n))
		}
		reqs = append(reqs,
			fmt.Sprintf(`{"url":"%s/stream-bytes/300000?chunk_size=65536&seed=1"}`, srv.HTTPURL), // chunked
			fmt.Sprintf(`{"url":%q}`, cut.URL))
		b := submit(t, h, "["+strings.Join(reqs, ",")+"]")
		var got []hookRecord
		for len(got) < len(reqs) {
			if hookBatchWait(b, 10000) <= 0 {
				t.Fatalf("no records after 10 s (have %d)", len(got))
			}
			var recs []hookRecord
			var rc int32
			if freeEach {
				recs, rc = hookBatchDrainFreeEach(b, 16)
			} else {
				recs, rc = hookBatchDrain(b, 16)
			}
			if rc != 0 {
				t.Fatalf("drain: %d", rc)
			}
			got = append(got, recs...)
		}
		hookBatchFree(b)
		for _, r := range got {
			switch {
			case int(r.Index) < len(sizes):
				if want := testserver.PatternBytes(sizes[r.Index]); r.Status != 200 || !bytes.Equal(r.Body, want) {
					t.Errorf("/x/bytes/%d: status %d, %d bytes, equal to what was sent: %v",
						sizes[r.Index], r.Status, len(r.Body), bytes.Equal(r.Body, want))
				}
			case int(r.Index) == len(sizes):
				if r.Status != 200 || len(r.Body) != 300000 {
					t.Errorf("chunked 300000 bytes: status %d, %d bytes", r.Status, len(r.Body))
				}
			default:
				if r.Error == 0 || len(r.Body) != 0 {
					t.Errorf("truncated body: error %d, %d bytes; want an error and no body", r.Error, len(r.Body))
				}
			}
		}
		// Big bodies go back through the engine's inbox: let it catch up.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if liveBuffers.Load() == buffersBefore && bigBufferCount() == bigBefore {
				break
			}
		}
		if n := liveBuffers.Load() - buffersBefore; n != 0 {
			t.Errorf("freeEach=%v: %d buffers still live", freeEach, n)
		}
		if n := bigBufferCount() - bigBefore; n != 0 {
			t.Errorf("freeEach=%v: %d big buffers still mapped", freeEach, n)
		}
	}
}

// Flow control: a caller that drains keeps at most bigInFlight bytes of
// big bodies live, and one that drains nothing until all records wait is
// never stalled by it.
func TestBigBodyFlowControl(t *testing.T) {
	srv := testServers(t)
	h := newClient(t, `{"max_retries":0,"http2":false,"concurrency":32}`)
	const n, size = 120, 1 << 20 // 120 MiB, about twice bigInFlight
	body := requests(n, fmt.Sprintf(`{"url":"%s/x/bytes/%d"}`, srv.HTTPURL, size))
	liveBytes := func() int {
		bigBuffers.Lock()
		defer bigBuffers.Unlock()
		return bigBuffers.liveBytes
	}

	t.Run("draining caller", func(t *testing.T) {
		b := submit(t, h, body)
		defer hookBatchFree(b)
		got, most := 0, 0
		for got < n {
			if hookBatchWait(b, 10000) <= 0 {
				t.Fatalf("no records after 10 s (have %d)", got)
			}
			most = max(most, liveBytes())
			recs, _ := hookBatchDrain(b, 4)
			for _, r := range recs {
				if len(r.Body) != size {
					t.Fatalf("record %d: %d bytes, error %d", r.Index, len(r.Body), r.Error)
				}
			}
			got += len(recs)
			time.Sleep(2 * time.Millisecond) // a slower consumer than the engine
		}
		if most > bigInFlight+size {
			t.Errorf("%d MiB of big bodies live at once, want at most %d MiB", most>>20, (bigInFlight+size)>>20)
		}
	})

	t.Run("caller that keeps what it drained", func(t *testing.T) {
		b := submit(t, h, body)
		defer hookBatchFree(b)
		var kept []unsafe.Pointer
		for len(kept) < n {
			if hookBatchWait(b, 10000) <= 0 {
				t.Fatalf("no records after 10 s (have %d)", len(kept))
			}
			bodies, rc := hookBatchDrainKeep(b, 8)
			if rc != 0 {
				t.Fatalf("drain: %d", rc)
			}
			kept = append(kept, bodies...)
		}
		// A kept body holds no read up: once drained it no longer counts
		// (the notices reach the engine through its inbox, a moment later).
		for deadline := time.Now().Add(5 * time.Second); liveBytes() != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d MiB of big bodies count as in flight after all were drained", liveBytes()>>20)
			}
		}
		if live := bigBufferCount(); live < n {
			t.Errorf("%d big buffers live, want the %d kept", live, n)
		}
		for _, p := range kept {
			hookFree(p)
		}
		if live := bigBufferCount(); live != 0 {
			t.Errorf("%d big buffers live after the kept bodies were freed", live)
		}
	})

	t.Run("cancelled while reads wait", func(t *testing.T) {
		b := submit(t, h, body)
		for got := 0; got < 8; { // drain a few: the caller counts as draining
			hookBatchWait(b, 10000)
			recs, _ := hookBatchDrain(b, 4)
			got += len(recs)
		}
		time.Sleep(50 * time.Millisecond) // let reads pile up behind the limit
		start := time.Now()
		hookBatchFree(b)
		if d := time.Since(start); d > bigWaitMax/2 {
			t.Errorf("fastreq_batch_free took %v: reads waiting for memory ignored the cancel", d)
		}
	})

	t.Run("caller that drains at the end", func(t *testing.T) {
		time.Sleep(bigWaitMax) // the previous subtest's releases are old now
		start := time.Now()
		b := submit(t, h, body)
		defer hookBatchFree(b)
		for hookBatchWait(b, 100) < n {
			if time.Since(start) > 20*time.Second {
				t.Fatalf("only %d of %d records after 20 s without draining", hookBatchWait(b, 0), n)
			}
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%d bodies took %v when nothing was drained; flow control held them up", n, d)
		}
		if got := hookDrainAll(b, 64); got != n {
			t.Errorf("drained %d records, want %d", got, n)
		}
	})
}

// Released big buffers are reused, and fastreq_free_os_memory really
// unmaps the ones kept for reuse (checked in /proc/self/maps).
func TestBigBufferPool(t *testing.T) {
	dropBigPool()
	mapped := func(p uintptr) bool {
		maps, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Skipf("no /proc/self/maps: %v", err)
		}
		for _, line := range strings.Split(string(maps), "\n") {
			var lo, hi uintptr
			if _, err := fmt.Sscanf(line, "%x-%x", &lo, &hi); err == nil && p >= lo && p < hi {
				return true
			}
		}
		return false
	}
	a := mapBig(1<<20, nil)
	pa := uintptr(unsafe.Pointer(&a[0]))
	releaseBig(unsafe.Pointer(&a[0]))
	b := mapBig(1<<20-5, nil) // the same size class: the same pages again
	if pb := uintptr(unsafe.Pointer(&b[0])); pb != pa || len(b) != 1<<20-5 {
		t.Errorf("second buffer at %#x (%d bytes), want the released one at %#x", pb, len(b), pa)
	}
	releaseBig(unsafe.Pointer(&b[0]))
	if !mapped(pa) {
		t.Fatal("a buffer kept for reuse is not mapped")
	}
	if rc := hookFreeOSMemory(); rc != 0 {
		t.Fatalf("fastreq_free_os_memory = %d", rc)
	}
	if mapped(pa) {
		t.Errorf("%#x still mapped after fastreq_free_os_memory", pa)
	}
}

// Past bigMappings live and pooled big buffers, big bodies come in
// malloc'd memory instead: every byte arrives, kept bodies are freed alike,
// and the mappings stop growing.
func TestBigBufferMappingBudget(t *testing.T) {
	srv := testServers(t)
	dropBigPool()
	setBudget := func(n int) int {
		bigBuffers.Lock()
		defer bigBuffers.Unlock()
		old := bigMappings
		bigMappings = n
		return old
	}
	budget := bigBufferCount() + 3
	defer setBudget(setBudget(budget))
	h := newClient(t, `{"max_retries":0,"http2":false,"concurrency":4}`)
	const n, size = 12, 100000
	b := submit(t, h, requests(n, fmt.Sprintf(`{"url":"%s/x/bytes/%d"}`, srv.HTTPURL, size)))
	defer hookBatchFree(b)
	var kept []unsafe.Pointer
	for len(kept) < n {
		if hookBatchWait(b, 10000) <= 0 {
			t.Fatalf("no records after 10 s (have %d)", len(kept))
		}
		bodies, rc := hookBatchDrainKeep(b, n)
		if rc != 0 {
			t.Fatalf("drain: %d", rc)
		}
		kept = append(kept, bodies...)
		if c := bigBufferCount(); c > budget {
			t.Fatalf("%d big buffers mapped, budget %d", c, budget)
		}
	}
	want := testserver.PatternBytes(size)
	for i, p := range kept {
		if got := unsafe.Slice((*byte)(p), size); !bytes.Equal(got, want) {
			t.Errorf("kept body %d differs from the server's", i)
		}
		hookFree(p)
	}
	if c := bigBufferCount(); c != 0 {
		t.Errorf("%d big buffers live after every kept body was freed", c)
	}
}

// A drain notice that comes after its buffer was freed and given to a new
// read (the pool hands the same pages out again) leaves that read alone:
// it can still grow its buffer.
func TestLateDrainNoticeLeavesANewReadAlone(t *testing.T) {
	dropBigPool()
	bigBuffers.Lock()
	before := bigBuffers.liveBytes
	bigBuffers.Unlock()
	a := mapBig(bigBuffer, nil)
	p := unsafe.Pointer(&a[0])
	handBig(p, true) // in a record
	releaseBig(p)    // freed by the caller before the engine took the notice
	b := bodyAllocator{}.Alloc(context.Background(), bigBuffer)
	if unsafe.Pointer(&b[0]) != p {
		t.Skip("the pool did not hand the same buffer out again")
	}
	drainedBig(p) // the late notice
	grown := bodyAllocator{}.Grow(b, 3*bigBuffer)
	if grown == nil {
		t.Fatal("a read could not grow its buffer after a late drain notice for the buffer's pages")
	}
	releaseBig(unsafe.Pointer(&grown[0]))
	bigBuffers.Lock()
	defer bigBuffers.Unlock()
	if bigBuffers.liveBytes != before {
		t.Errorf("liveBytes = %d after every buffer went back, want %d", bigBuffers.liveBytes, before)
	}
}
