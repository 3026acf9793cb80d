//go:build fastreqtest

package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// readable reports whether fd polls readable within timeout.
func readable(t *testing.T, fd int32, timeout time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		fds := []unix.PollFd{{Fd: fd, Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(max(time.Until(deadline), 0)/time.Millisecond))
		if err == unix.EINTR { // a signal (the runtime's preemption) cut the wait short
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return n == 1
	}
}

// takeMail collects want records from a mailbox, waiting on its
// descriptor, taking at most max per call.
func takeMail(t *testing.T, m hookMbox, want, max int) map[int64]hookRecord {
	t.Helper()
	got := map[int64]hookRecord{}
	fd := hookMailboxFD(m)
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		if !readable(t, fd, 100*time.Millisecond) {
			continue
		}
		recs, rc := hookMailboxTake(m, max)
		if rc <= 0 {
			t.Fatalf("fastreq_mailbox_take = %d on a readable descriptor", rc)
		}
		for _, r := range recs {
			if _, dup := got[r.Index]; dup {
				t.Errorf("tag %d delivered twice", r.Index)
			}
			got[r.Index] = r
		}
	}
	if len(got) != want {
		t.Fatalf("%d records from the mailbox, want %d", len(got), want)
	}
	return got
}

// TestMailbox: requests posted under tags each come back once, tagged,
// with their body; the descriptor is readable exactly while records wait,
// also when max leaves some behind; a bad post gets a refused record; the
// mailbox is the same on every call and outlives the client's close.
func TestMailbox(t *testing.T) {
	srv := testServers(t)
	h, rc, _ := hookClientNew([]byte(`{"max_retries":0,"concurrency":4}`))
	if rc != 0 {
		t.Fatal("client_new failed")
	}
	m, rc := hookClientMailbox(h)
	if rc != 0 || m == (hookMbox{}) {
		t.Fatalf("fastreq_client_mailbox = %d", rc)
	}
	if again, _ := hookClientMailbox(h); again != m {
		t.Error("a second fastreq_client_mailbox gave another mailbox")
	}
	for tag := int64(1); tag <= 20; tag++ {
		if rc := hookMailboxPost(m, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+fmt.Sprintf("/x/echo?t=%d", tag)), tag); rc != 0 {
			t.Fatalf("post %d = %d", tag, rc)
		}
	}
	got := takeMail(t, m, 20, 8)
	for tag := int64(1); tag <= 20; tag++ {
		r := got[tag]
		if r.Status != 200 || r.Error != 0 || !strings.Contains(string(r.Body), fmt.Sprintf(`"t":["%d"]`, tag)) {
			t.Errorf("tag %d: status %d error %d body %.80s", tag, r.Status, r.Error, r.Body)
		}
	}
	if readable(t, hookMailboxFD(m), 0) {
		t.Error("the descriptor stays readable after every record was taken")
	}

	// Three waiting, taken two at a time.
	for tag := int64(21); tag <= 23; tag++ {
		hookMailboxPost(m, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/json"), tag)
	}
	time.Sleep(500 * time.Millisecond) // three local requests are done long before
	first, _ := hookMailboxTake(m, 2)
	if len(first) != 2 || !readable(t, hookMailboxFD(m), 0) {
		t.Errorf("first take of 2: %d records, readable after: %v", len(first), readable(t, hookMailboxFD(m), 0))
	}
	rest, _ := hookMailboxTake(m, 2)
	if len(rest) != 1 || readable(t, hookMailboxFD(m), 0) {
		t.Errorf("second take: %d records (want 1), readable after: %v", len(rest), readable(t, hookMailboxFD(m), 0))
	}

	// Posts that cannot start come back refused, as a strict submit would.
	for tag, bad := range map[int64]string{30: `[{"url":"ftp://x"}]`, 31: `{"url":"http://x"}`, 32: `[]`, 33: `[{"nope":1}]`} {
		hookMailboxPost(m, bad, tag)
	}
	for tag, r := range takeMail(t, m, 4, 64) {
		if r.Error != 1 || r.Reserved != 1 || !strings.Contains(r.Meta, `"validation"`) {
			t.Errorf("bad post %d: error %d reserved %d meta %s", tag, r.Error, r.Reserved, r.Meta)
		}
	}

	// A stalled request, cancelled by tag.
	hookMailboxPost(m, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/stall?seconds=30"), 40)
	time.Sleep(100 * time.Millisecond)
	if rc := hookMailboxCancel(m, 40); rc != 0 {
		t.Errorf("cancel = %d", rc)
	}
	if r := takeMail(t, m, 1, 4)[40]; r.Error != 9 {
		t.Errorf("cancelled request: error %d, want FASTREQ_ERR_CANCELLED (9)", r.Error)
	}

	// After the client closes: posts are refused, taking gives nothing, and
	// the mailbox is still the host's to free.
	hookMailboxPost(m, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/stall?seconds=30"), 50)
	time.Sleep(50 * time.Millisecond)
	hookClientClose(h)
	if rc := hookMailboxPost(m, `[{"url":"http://127.0.0.1:1/"}]`, 51); rc != rcClosed {
		t.Errorf("post after close = %d, want ECLOSED", rc)
	}
	if _, rc := hookMailboxTake(m, 4); rc != 0 {
		t.Errorf("take after close = %d, want 0", rc)
	}
	if _, rc := hookClientMailbox(h); rc != rcBadHandle {
		t.Errorf("fastreq_client_mailbox(closed client) = %d, want EBADHANDLE", rc)
	}
	hookMailboxFree(m)
	if n := hookLiveBuffers(); n != 0 {
		t.Errorf("%d C buffers live after the mailbox was freed", n)
	}
}

// TestMailboxFreedFirst: a host that frees the mailbox while requests run
// leaves their records to the engine, which releases them.
func TestMailboxFreedFirst(t *testing.T) {
	srv := testServers(t)
	h, _, _ := hookClientNew([]byte(`{"max_retries":0}`))
	m, _ := hookClientMailbox(h)
	for tag := int64(1); tag <= 5; tag++ {
		hookMailboxPost(m, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/json"), tag)
	}
	hookMailboxFree(m)
	time.Sleep(200 * time.Millisecond) // the results arrive to a mailbox nobody reads
	hookClientClose(h)
	if n := hookLiveBuffers(); n != 0 {
		t.Errorf("%d C buffers live", n)
	}
}

// TestMailboxBadInput: NULL mailboxes and arrays give codes, not crashes.
func TestMailboxBadInput(t *testing.T) {
	if rc := hookMailboxPost(hookMbox{}, `[]`, 1); rc != rcEINVAL {
		t.Errorf("post(NULL) = %d", rc)
	}
	if rc := hookMailboxCancel(hookMbox{}, 1); rc != rcEINVAL {
		t.Errorf("cancel(NULL) = %d", rc)
	}
	if fd := hookMailboxFD(hookMbox{}); fd != rcEINVAL {
		t.Errorf("fd(NULL) = %d", fd)
	}
	if _, rc := hookMailboxTake(hookMbox{}, 1); rc != rcEINVAL {
		t.Errorf("take(NULL) = %d", rc)
	}
	hookMailboxFree(hookMbox{})
	if _, rc := hookClientMailbox(0); rc != rcBadHandle {
		t.Errorf("client_mailbox(0) = %d", rc)
	}
	if rc := hookClientMailboxNullOut(); rc != rcEINVAL {
		t.Errorf("client_mailbox(out NULL) = %d", rc)
	}
	if _, rc, _ := hookSubmit(0, []byte(`[]`), 0); rc != rcBadHandle {
		t.Errorf("submit on handle 0 = %d", rc)
	}
}

// TestIntakeStartsBatches: with the intake on (two slots on one CPU),
// batches submitted from many threads at once all start and finish.
func TestIntakeStartsBatches(t *testing.T) {
	srv := testServers(t)
	h, rc, _ := hookClientNew([]byte(`{"max_retries":0,"concurrency":8}`))
	if rc != 0 {
		t.Fatal("client_new failed")
	}
	prev := intakeOn.Swap(true)
	defer intakeOn.Store(prev)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 25; i++ {
					b := submit(t, h, requests(3, fmt.Sprintf(`{"url":%q}`, srv.HTTPURL+"/x/json")))
					collect(t, b, 3, 10*time.Second)
					hookBatchFree(b)
				}
			}()
		}
		wg.Wait()
	}()
	select {
	case <-finished:
	case <-time.After(30 * time.Second):
		t.Error("batches submitted through the intake did not finish")
	}
	if t.Failed() {
		return // the client is left open: closing would wait for batches that never started
	}
	hookClientClose(h)
	if theIntake.in == nil {
		t.Fatal("the batches did not go through the intake")
	}
}
