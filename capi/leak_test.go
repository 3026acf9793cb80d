//go:build fastreqtest

package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fastreq/fastreq/tests/testserver"
)

// TestNoLeaksAfterCloseAndFree is the registry leak test, after
// libtailscale's: clients of every transport run real batches against the
// local servers - drained, cancelled, streamed, freed undrained, and cut
// short by closing their client - and afterwards every handle is gone,
// every C buffer is freed, and the goroutine count is back where it
// started (so closing a client also ends its idle connections).
func TestNoLeaksAfterCloseAndFree(t *testing.T) {
	ts := testServers(t)
	if n := handles.len(); n != 0 {
		t.Fatalf("%d handles live before the test", n)
	}
	buffers0 := liveBuffers.Load()
	goroutines0 := settledGoroutines()

	const common = `"max_retries":0,"timeout":30,"verify_ssl":false,"concurrency":16`
	clients := []struct {
		name, cfg, url string
	}{
		{"http1", `{"backend":"http1",` + common + `}`, ts.HTTPURL},
		{"h2 over TLS", `{"backend":"auto",` + common + `}`, ts.TLSURL},
		{"h2 over verified TLS", `{"backend":"auto","ca_file":"` + ts.CAFile + `",` + strings.Replace(common, `"verify_ssl":false`, `"verify_ssl":true`, 1) + `}`, ts.TLSURL},
		{"h2c", `{"backend":"http2",` + common + `}`, ts.HTTPURL},
		{"TLS through the HTTP proxy", `{"proxies":["` + ts.ProxyURL + `"],` + common + `}`, ts.TLSH1URL},
		{"through SOCKS5", `{"proxies":["` + ts.SOCKS5URL + `"],` + common + `}`, ts.HTTPURL},
	}
	for _, tc := range clients {
		t.Run(tc.name, func(t *testing.T) { exerciseClient(t, tc.cfg, tc.url) })
	}

	if n := handles.len(); n != 0 {
		t.Errorf("%d handles still live after every client was closed and every batch freed", n)
	}
	if n := hookLiveHandles(); n != 0 {
		t.Errorf("fastreq_live_handles() = %d", n)
	}
	if n := liveBuffers.Load() - buffers0; n != 0 {
		t.Errorf("%d C buffers still live", n)
	}
	if n := hookLiveBuffers(); n != buffers0 {
		t.Errorf("fastreq_live_buffers() = %d, want %d", n, buffers0)
	}
	waitGoroutines(t, goroutines0)
}

// exerciseClient runs every kind of batch on one client and closes it.
func exerciseClient(t *testing.T, cfg, url string) {
	h, rc, e := hookClientNew([]byte(cfg))
	if rc != 0 {
		t.Fatalf("fastreq_client_new = %d: %s", rc, e)
	}
	closed := false
	defer func() {
		if !closed {
			hookClientClose(h)
		}
	}()

	// Drained to the end.
	b := submit(t, h, requests(100, `{"url":"`+url+`/x/json"}`))
	for _, r := range collect(t, b, 100, 30*time.Second) {
		if r.Error != 0 || r.Status != 200 || !bytes.Equal(r.Body, testserver.JSONBody) {
			t.Fatalf("record %d: error %d status %d meta %s", r.Index, r.Error, r.Status, r.Meta)
		}
	}
	mustFree(t, b)

	// Cancelled while the requests stall.
	b = submit(t, h, requests(20, `{"url":"`+url+`/x/stall"}`))
	hookBatchWait(b, 100)
	if rc := hookBatchCancel(b); rc != 0 {
		t.Fatalf("fastreq_batch_cancel = %d", rc)
	}
	for _, r := range collect(t, b, 20, 10*time.Second) {
		if r.Error != 9 { // FASTREQ_ERR_CANCELLED
			t.Fatalf("record %d: error %d, want CANCELLED; meta %s", r.Index, r.Error, r.Meta)
		}
	}
	mustFree(t, b)

	// Streamed.
	b = submit(t, h, requests(5, `{"url":"`+url+`/x/slow-chunks?n=3&interval_ms=10","stream":true}`))
	collect(t, b, 5, 30*time.Second)
	mustFree(t, b)

	// Freed while running, nothing drained: free releases the records.
	b = submit(t, h, requests(30, `{"url":"`+url+`/x/json"}`))
	hookBatchWait(b, 20)
	mustFree(t, b)

	// Cut short by closing the client; the batch is freed afterwards. A
	// strict submit returns once the batch has started, so the close
	// cannot come first.
	b, rc, e = hookSubmit(h, []byte(requests(10, `{"url":"`+url+`/x/stall"}`)), 1) // FASTREQ_SUBMIT_STRICT
	if rc != 0 {
		t.Fatalf("fastreq_batch_submit = %d: %s", rc, e)
	}
	hookBatchWait(b, 100)
	if rc = hookClientClose(h); rc != 0 {
		t.Fatalf("fastreq_client_close = %d", rc)
	}
	closed = true
	if rc := hookBatchWait(b, 0); rc != 10 {
		t.Errorf("%d records waiting after client_close, want 10", rc)
	}
	mustFree(t, b)
}

func mustFree(t *testing.T, b uint64) {
	t.Helper()
	if rc := hookBatchFree(b); rc != 0 {
		t.Fatalf("fastreq_batch_free = %d", rc)
	}
}

// settledGoroutines is the goroutine count once it stopped falling (tests
// that ran before may still be winding down).
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m >= n {
			return m
		}
		n = m
	}
	return n
}

// waitGoroutines polls for up to five seconds until at most want
// goroutines run, and otherwise fails with a dump of them.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			var sb strings.Builder
			pprof.Lookup("goroutine").WriteTo(&sb, 1)
			t.Fatalf("%d goroutines 5 s after every client was closed, want at most %d:\n%s",
				runtime.NumGoroutine(), want, sb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseStaleHandles: closing a client twice is OK both times, but
// fastreq_client_close on a handle that never was a client - live or
// freed batch, 0, never issued - is FASTREQ_EBADHANDLE (fastreq.h).
func TestCloseStaleHandles(t *testing.T) {
	const ebadhandle = -2
	c, rc, e := hookClientNew(nil)
	if rc != 0 {
		t.Fatalf("fastreq_client_new = %d: %s", rc, e)
	}
	b, rc, e := hookSubmit(c, []byte(`[]`), 0)
	if rc != 0 {
		t.Fatalf("fastreq_batch_submit = %d: %s", rc, e)
	}
	freed, rc, e := hookSubmit(c, []byte(`[]`), 0)
	if rc != 0 {
		t.Fatalf("fastreq_batch_submit = %d: %s", rc, e)
	}
	mustFree(t, freed)

	for _, tc := range []struct {
		name string
		h    uint64
	}{
		{"zero", 0},
		{"never issued", 1 << 62},
		{"live batch", b},
		{"freed batch", freed},
	} {
		if rc := hookClientClose(tc.h); rc != ebadhandle {
			t.Errorf("fastreq_client_close(%s) = %d, want FASTREQ_EBADHANDLE", tc.name, rc)
		}
	}
	for i := 0; i < 2; i++ {
		if rc := hookClientClose(c); rc != 0 {
			t.Errorf("fastreq_client_close(client), call %d = %d, want OK", i+1, rc)
		}
	}
	// Closed: the client handle is now a bad handle for everything else.
	if _, rc, _ := hookSubmit(c, []byte(`[]`), 1); rc != ebadhandle && rc != -3 {
		t.Errorf("submit on a closed client = %d, want EBADHANDLE or ECLOSED", rc)
	}
	if rc, _ := hookSetCookies(c, []byte(`{}`)); rc != ebadhandle {
		t.Errorf("set_cookies on a closed client = %d", rc)
	}
	mustFree(t, b)
	if n := handles.len(); n != 0 {
		t.Errorf("%d handles live", n)
	}
}

// TestDrainContract checks the queue through the ABI on a synthetic batch:
// drains in chunks hand out each record once, done flips only after the
// last RESULT is drained, and free releases what nobody drained.
func TestDrainContract(t *testing.T) {
	before := liveBuffers.Load()
	body := []byte(`{"ok":true}`)
	h, cleanup := hookSyntheticBatch(1000, body)
	if got := hookBatchWait(h, 0); got != 1000 {
		t.Errorf("fastreq_batch_wait(0) = %d, want 1000 waiting", got)
	}
	// The eventfd, made by this first fastreq_batch_fd call with records
	// already waiting, is readable at once with a count of 1, not 1000.
	fd := hookBatchFD(h)
	var counter [8]byte
	if n, err := syscall.Read(int(fd), counter[:]); n != 8 || err != nil {
		t.Fatalf("read(eventfd %d) = %d, %v", fd, n, err)
	}
	if v := binary.NativeEndian.Uint64(counter[:]); v != 1 {
		t.Errorf("eventfd counter %d after 1000 records queued into an empty queue, want 1", v)
	}
	if _, err := syscall.Read(int(fd), counter[:]); err != syscall.EAGAIN {
		t.Errorf("second read(eventfd) = %v, want EAGAIN (non-blocking, already read)", err)
	}
	seen := make([]bool, 1000)
	for n := 0; n < 990; {
		recs, rc := hookBatchDrain(h, 7)
		if rc != 0 || len(recs) == 0 {
			t.Fatalf("drain: %d records, rc %d", len(recs), rc)
		}
		for _, r := range recs {
			if seen[r.Index] {
				t.Fatalf("index %d twice", r.Index)
			}
			seen[r.Index] = true
			if !bytes.Equal(r.Body, body) || !strings.Contains(r.Meta, fmt.Sprintf(`"index":%d,`, r.Index)) {
				t.Fatalf("record %d: body %q meta %s", r.Index, r.Body, r.Meta)
			}
		}
		n += len(recs)
		if d := hookBatchDone(h); d != 0 {
			t.Fatalf("done = %d after %d records", d, n)
		}
	}
	if recs, rc := hookBatchDrain(h, 0); rc != 0 || recs != nil {
		t.Errorf("drain(max 0) = %v, %d", recs, rc)
	}
	if _, rc := hookBatchDrain(h, -1); rc != -1 {
		t.Errorf("drain(max -1) = %d, want EINVAL", rc)
	}
	// About 10 left (7 does not divide 990): free them undrained.
	if n := liveBuffers.Load() - before; n == 0 {
		t.Fatal("no buffers live before the free")
	}
	cleanup()
	if n := liveBuffers.Load() - before; n != 0 {
		t.Errorf("%d buffers live after freeing a batch with undrained records", n)
	}

	// Drained to the end, done is 1 and wait returns 0 at once.
	h, cleanup = hookSyntheticBatch(300, nil)
	defer cleanup()
	if n := hookDrainAll(h, 256); n != 300 {
		t.Fatalf("drained %d, want 300", n)
	}
	if d := hookBatchDone(h); d != 1 {
		t.Errorf("done = %d after the last record", d)
	}
	start := time.Now()
	if n := hookBatchWait(h, 5000); n != 0 || time.Since(start) > time.Second {
		t.Errorf("wait on a drained batch = %d after %v", n, time.Since(start))
	}
}
