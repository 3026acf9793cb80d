//go:build fastreqtest

package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHugeTimeoutIsNotInstant: a timeout past the longest time.Duration
// (about 292 years) is valid and means "no practical limit". Converting
// it used to overflow to a negative Duration, so every request of such a
// client failed at once with a timeout.
func TestHugeTimeoutIsNotInstant(t *testing.T) {
	ts := testServers(t)
	for _, cfg := range []string{
		`{"timeout":1e10,"max_retries":0}`,
		`{"timeout":1e300,"max_retries":0,"max_delay":1e300,"backoff_multiplier":1e300,"proxy_cooldown":1e300}`,
	} {
		c := newClient(t, cfg)
		b := submit(t, c, `[{"url":"`+ts.HTTPURL+`/x/json"},{"url":"`+ts.HTTPURL+`/x/json","timeout":1e12}]`)
		for _, r := range collect(t, b, 2, 10*time.Second) {
			if r.Status != 200 || r.Error != 0 {
				t.Errorf("client %s, request %d: status %d error %d: %s", cfg, r.Index, r.Status, r.Error, r.Meta)
			}
		}
		if rc := hookBatchFree(b); rc != 0 {
			t.Errorf("fastreq_batch_free = %d", rc)
		}
	}
}

// TestWaitReturnsWhenBatchFreed: a thread blocked in fastreq_batch_wait
// with no time limit must come back when another thread frees the batch
// ("every function is safe to call from any thread"). It used to block
// forever whenever the free released the records before the waiter looked
// at the queue again: nothing would ever signal it.
func TestWaitReturnsWhenBatchFreed(t *testing.T) {
	ts := testServers(t)
	c := newClient(t, `{"max_retries":0,"timeout":30}`)
	for i := 0; i < 50; i++ {
		h := submit(t, c, `[{"url":"`+ts.HTTPURL+`/x/stall"},{"url":"`+ts.HTTPURL+`/x/stall"}]`)
		done := make(chan int32, 2)
		for j := 0; j < 2; j++ { // two waiters: both must wake
			go func() { done <- hookBatchWait(h, -1) }()
		}
		time.Sleep(time.Millisecond)
		if rc := hookBatchFree(h); rc != 0 {
			t.Fatalf("fastreq_batch_free = %d", rc)
		}
		for j := 0; j < 2; j++ {
			select {
			case rc := <-done:
				if rc < 0 && rc != -2 {
					t.Fatalf("fastreq_batch_wait = %d", rc)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("iteration %d: fastreq_batch_wait(-1) still blocked 5 s after the batch was freed", i)
			}
		}
	}
}

// With FASTREQ_SUBMIT_META_ON_FAILURE, successful records carry no
// metadata and failed ones still do.
func TestMetaOnFailureFlag(t *testing.T) {
	srv := testServers(t)
	h, rc, msg := hookClientNew([]byte(`{"max_retries":0}`))
	if rc != 0 {
		t.Fatalf("client: %d %s", rc, msg)
	}
	defer hookClientClose(h)
	reqs := fmt.Sprintf(`[{"url":%q},{"url":"http://127.0.0.1:1/"}]`, srv.HTTPURL+"/x/json")
	b, rc, msg := hookSubmit(h, []byte(reqs), 2)
	if rc != 0 {
		t.Fatalf("submit: %d %s", rc, msg)
	}
	defer hookBatchFree(b)
	var got []hookRecord
	for len(got) < 2 {
		hookBatchWait(b, 1000)
		recs, _ := hookBatchDrain(b, 8)
		got = append(got, recs...)
	}
	for _, r := range got {
		switch {
		case r.Index == 0 && (r.Status != 200 || r.Error != 0 || r.Meta != "" || len(r.Body) == 0):
			t.Errorf("success record %+v: want status 200, a body and no meta", r)
		case r.Index == 1 && (r.Error == 0 || !strings.Contains(r.Meta, `"kind":"connect"`)):
			t.Errorf("failure record %+v: want an error with its meta", r)
		}
	}
}

// fastreq_batch_next waits and drains in one call: every record comes out
// once, a timeout or a done batch gives 0, bad arguments EINVAL and a
// freed batch EBADHANDLE.
func TestBatchNext(t *testing.T) {
	srv := testServers(t)
	h := newClient(t, `{"max_retries":0}`)
	stall := srv.HTTPURL + "/x/stall?seconds=0.3"
	b := submit(t, h, fmt.Sprintf(`[{"url":%q},{"url":%q},{"url":%q}]`, srv.HTTPURL+"/x/json", srv.HTTPURL+"/x/json", stall))
	if got := hookBatchNext(b, 0, 0); got != -1 {
		t.Errorf("fastreq_batch_next(max 0) = %d, want FASTREQ_EINVAL (-1)", got)
	}
	got, start := 0, time.Now()
	for got < 3 && time.Since(start) < 10*time.Second {
		n := hookBatchNext(b, 2, 100)
		if n < 0 || n > 2 {
			t.Fatalf("fastreq_batch_next = %d", n)
		}
		got += int(n)
	}
	if got != 3 {
		t.Fatalf("drained %d records, want 3", got)
	}
	if hookBatchDone(b) != 1 {
		t.Error("batch not done after its 3 records")
	}
	t0 := time.Now()
	if n := hookBatchNext(b, 4, 5000); n != 0 || time.Since(t0) > time.Second {
		t.Errorf("fastreq_batch_next on a done batch = %d after %v, want 0 at once", n, time.Since(t0))
	}
	hookBatchFree(b)
	if n := hookBatchNext(b, 4, 0); n != -2 {
		t.Errorf("fastreq_batch_next on a freed batch = %d, want FASTREQ_EBADHANDLE (-2)", n)
	}
}

// TestBatchSetWake: with a wake threshold, waits return once that many
// records wait, once every result is in (fewer), once 4 MiB of bodies
// wait, or on their timeout -- not at the first record, as by default.
func TestBatchSetWake(t *testing.T) {
	srv := testServers(t)
	h := newClient(t, `{"max_retries":0}`)
	submitWake := func(min, delayUS int, urls ...string) uint64 {
		t.Helper()
		parts := make([]string, len(urls))
		for i, u := range urls {
			parts[i] = fmt.Sprintf(`{"url":%q}`, srv.HTTPURL+u)
		}
		b := submit(t, h, "["+strings.Join(parts, ",")+"]")
		if rc := hookBatchSetWake(b, min, delayUS); rc != 0 {
			t.Fatalf("set_wake(%d) = %d", min, rc)
		}
		return b
	}
	timed := func(f func() int32) (int32, time.Duration) {
		t0 := time.Now()
		n := f()
		return n, time.Since(t0)
	}

	// Four fast requests and a slow one: with 5 nothing comes back before
	// the slow one ends.
	b := submitWake(5, 0, "/x/json", "/x/json", "/x/json", "/x/json", "/x/stall?seconds=0.4")
	n, took := timed(func() int32 { return hookBatchNext(b, 16, 5000) })
	if n != 5 || took < 300*time.Millisecond {
		t.Errorf("next with wake 5 = %d after %v, want 5 after the 0.4 s request", n, took)
	}
	hookBatchFree(b)

	// A threshold above the batch size: the wait ends when every result is in.
	b = submitWake(100, 0, "/x/json", "/x/json", "/x/json")
	n, took = timed(func() int32 { return hookBatchNext(b, 16, 5000) })
	if n != 3 || took > 3*time.Second {
		t.Errorf("next with wake 100 on 3 requests = %d after %v, want 3 at once", n, took)
	}
	if hookBatchDone(b) != 1 {
		t.Error("batch not done")
	}
	hookBatchFree(b)

	// 4 MiB of bodies wake the waiter before the threshold is met.
	b = submitWake(3, 0, "/x/bytes/2500000", "/x/bytes/2500000", "/x/stall?seconds=3")
	n, took = timed(func() int32 { return hookBatchNext(b, 16, 10000) })
	if n != 2 || took > 2*time.Second {
		t.Errorf("next with 5 MB of bodies waiting = %d after %v, want 2 before the stall ends", n, took)
	}
	// The timeout: returns what is waiting (nothing) after ~100 ms.
	n, took = timed(func() int32 { return hookBatchWait(b, 100) })
	if n != 0 || took < 90*time.Millisecond || took > 2*time.Second {
		t.Errorf("wait timeout = %d after %v, want 0 after 100 ms", n, took)
	}
	if rc := hookBatchSetWake(b, 0, 0); rc != -1 {
		t.Errorf("set_wake(0) = %d, want FASTREQ_EINVAL (-1)", rc)
	}
	if rc := hookBatchSetWake(b, 3, -1); rc != -1 {
		t.Errorf("set_wake(3, -1 us) = %d, want FASTREQ_EINVAL (-1)", rc)
	}
	hookBatchFree(b)

	// A delay: a bunch below the threshold is woken that long after its
	// first record, not when the slow request ends.
	b = submitWake(5, 50_000, "/x/json", "/x/json", "/x/stall?seconds=2")
	n, took = timed(func() int32 { return hookBatchNext(b, 16, 5000) })
	if n < 1 || n > 2 || took > time.Second {
		t.Errorf("next with wake 5 and a 50 ms delay = %d after %v, want the fast results well before the 2 s request", n, took)
	}
	hookBatchFree(b)
	if rc := hookBatchSetWake(b, 3, 0); rc != -2 {
		t.Errorf("set_wake on a freed batch = %d, want FASTREQ_EBADHANDLE (-2)", rc)
	}
}

// TestExpectAfterResults: a batch runs once submitted, so its results can
// be pushed before the queue learns their number; learning it wakes the
// waiters when those results are the whole batch, and not before.
func TestExpectAfterResults(t *testing.T) {
	q := hookQueueNew()
	defer hookBatchFree(q.h)
	efd := int(hookBatchFD(q.h))
	if efd < 0 {
		t.Fatalf("batch_fd = %d", efd)
	}
	hookBatchSetWake(q.h, 5, 0)
	q.push(0)
	q.push(0)
	var c [8]byte
	if n, _ := syscall.Read(efd, c[:]); n == 8 {
		t.Error("eventfd readable with 2 of an unknown number of results, threshold 5")
	}
	if hookBatchDone(q.h) != 0 {
		t.Error("done before the number of results is known")
	}
	q.expect(2)
	if n, _ := syscall.Read(efd, c[:]); n != 8 {
		t.Error("eventfd not readable once the 2 results waiting are the whole batch")
	}
	if got := hookBatchWait(q.h, 0); got != 2 {
		t.Errorf("wait(0) = %d, want 2", got)
	}
}

// TestWakeThresholdEventFD: the descriptor follows the threshold: written
// once when the records waiting reach it, or when 4 MiB of bodies wait, or
// at the last result; lowering the threshold below what waits writes it.
// With a delay, the first record of a bunch asks the engine for a timer.
func TestWakeThresholdEventFD(t *testing.T) {
	q := hookQueueNew()
	q.expect(11)
	defer hookBatchFree(q.h)
	efd := int(hookBatchFD(q.h))
	if efd < 0 {
		t.Fatalf("batch_fd = %d", efd)
	}
	readable := func() bool {
		var c [8]byte
		n, _ := syscall.Read(efd, c[:])
		return n == 8
	}
	drainAll := func() int32 { return hookBatchNext(q.h, 16, 0) }
	hookBatchSetWake(q.h, 4, 0)
	for i := 0; i < 3; i++ {
		if flags := q.push(10); flags != 0 {
			t.Errorf("push flags %d with no delay, want 0", flags)
		}
	}
	if readable() {
		t.Error("eventfd readable with 3 records waiting, threshold 4")
	}
	q.push(10)
	if !readable() {
		t.Error("eventfd not readable once 4 records wait")
	}
	q.push(10)
	if readable() {
		t.Error("eventfd written again by a 5th record (already awake)")
	}
	if n := drainAll(); n != 5 {
		t.Fatalf("drained %d, want 5", n)
	}
	q.push(3 << 20)
	if readable() {
		t.Error("eventfd readable with 3 MiB waiting")
	}
	q.push(2 << 20)
	if !readable() {
		t.Error("eventfd not readable with 5 MiB of bodies waiting")
	}
	drainAll()
	q.push(10)
	hookBatchSetWake(q.h, 1, 0)
	if !readable() {
		t.Error("eventfd not readable after the threshold dropped below the records waiting")
	}
	drainAll()
	hookBatchSetWake(q.h, 4, 500)
	if flags := q.push(10); flags != 2 { // FQ_ARM_TIMER
		t.Errorf("first push of a bunch with a delay: flags %d, want FQ_ARM_TIMER (2)", flags)
	}
	if flags := q.push(10); flags != 0 {
		t.Errorf("second push of the bunch: flags %d, want 0", flags)
	}
	hookBatchSetWake(q.h, 4, 0)
	q.push(10) // the 11th and last result
	if !readable() {
		t.Error("eventfd not readable at the last result")
	}
}

// TestSubmitWithoutStrict: a submit without FASTREQ_SUBMIT_STRICT returns
// at once; an invalid request is its own failed record, and a batch that
// cannot start at all answers every wait, drain and done with the code a
// strict submit returns, with no records, and is freed like any other.
func TestSubmitWithoutStrict(t *testing.T) {
	srv := testServers(t)
	h := newClient(t, `{"max_retries":0}`)
	handles0 := hookLiveHandles()

	b := submit(t, h, `[{"url":"`+srv.HTTPURL+`/x/json"},{"url":"ftp://nope/"}]`)
	recs := collect(t, b, 2, 10*time.Second)
	byIndex := map[int64]hookRecord{}
	for _, r := range recs {
		byIndex[r.Index] = r
	}
	if byIndex[0].Status != 200 || byIndex[1].Error != 1 || !strings.Contains(byIndex[1].Meta, `"validation"`) {
		t.Errorf("records %+v, want a 200 and a validation failure", recs)
	}
	if hookBatchDone(b) != 1 {
		t.Error("batch not done")
	}
	mustFree(t, b)

	for _, tc := range []struct {
		name, reqs string
		client     uint64
		want       int32
	}{
		{"bad JSON", `[{"url":`, h, -1},
		{"not an array", `{"url":"x"}`, h, -1},
		{"not a client", `[]`, 12345, -2},
	} {
		b, rc, e := hookSubmit(tc.client, []byte(tc.reqs), 0)
		if rc != 0 || e != "" {
			t.Fatalf("%s: submit = %d (%s), want OK at once", tc.name, rc, e)
		}
		if got := hookBatchWait(b, 5000); got != tc.want {
			t.Errorf("%s: wait = %d, want %d", tc.name, got, tc.want)
		}
		if got := hookBatchNext(b, 4, 0); got != tc.want {
			t.Errorf("%s: next = %d, want %d", tc.name, got, tc.want)
		}
		if _, got := hookBatchDrain(b, 4); got != tc.want {
			t.Errorf("%s: drain = %d, want %d", tc.name, got, tc.want)
		}
		if got := hookBatchDone(b); got != tc.want {
			t.Errorf("%s: done = %d, want %d", tc.name, got, tc.want)
		}
		if fd := hookBatchFD(b); fd < 0 {
			t.Errorf("%s: fd = %d", tc.name, fd)
		} else {
			var c [8]byte
			if n, _ := syscall.Read(int(fd), c[:]); n != 8 {
				t.Errorf("%s: descriptor not readable for a refused batch", tc.name)
			}
		}
		mustFree(t, b)
	}
	if n := hookLiveHandles(); n != handles0 {
		t.Errorf("%d live handles, want %d", n, handles0)
	}
}

// TestRequestsCheck: fastreq_requests_check answers as a strict submit
// does and starts nothing.
func TestRequestsCheck(t *testing.T) {
	handles0, buffers0 := hookLiveHandles(), liveBuffers.Load()
	for _, tc := range []struct {
		reqs, field string
		rc          int32
	}{
		{`[{"url":"http://127.0.0.1:1/"},{"url":"https://x.example/","method":"PUT","json":{"a":1}}]`, "", 0},
		{`[]`, "", 0},
		{`[{"url":"http://127.0.0.1:1/"},{"url":"ftp://x/"}]`, "url", -1},
		{`[{"url":"http://x/","timeout":"soon"}]`, "timeout", -1},
		{`[{"url":`, "requests", -1},
	} {
		rc, e := hookRequestsCheck([]byte(tc.reqs))
		if rc != tc.rc {
			t.Errorf("check(%s) = %d (%s), want %d", tc.reqs, rc, e, tc.rc)
			continue
		}
		if tc.rc != 0 && !strings.Contains(e, `"field":"`+tc.field+`"`) {
			t.Errorf("check(%s): error %s does not name field %q", tc.reqs, e, tc.field)
		}
		if tc.rc == 0 && e != "" {
			t.Errorf("check(%s) OK with an error %s", tc.reqs, e)
		}
	}
	if h, b := hookLiveHandles(), liveBuffers.Load(); h != handles0 || b != buffers0 {
		t.Errorf("handles %d -> %d, buffers %d -> %d", handles0, h, buffers0, b)
	}
}
