package main

import (
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

const rcNotifyClient = 4 // FASTREQ_SUBMIT_NOTIFY_CLIENT

// readable reports whether fd polls readable within timeout.
func readable(t *testing.T, fd int32, timeout time.Duration) bool {
	t.Helper()
	var set syscall.FdSet
	set.Bits[fd/64] |= 1 << (uint(fd) % 64)
	tv := syscall.NsecToTimeval(timeout.Nanoseconds())
	n, err := syscall.Select(int(fd)+1, &set, nil, nil, &tv)
	if err != nil {
		t.Fatalf("select: %v", err)
	}
	return n == 1
}

// takeReady collects want handles from the client's ready list, waiting
// on its descriptor, taking at most max per call.
func takeReady(t *testing.T, h uint64, fd int32, want, max int) []uint64 {
	t.Helper()
	var got []uint64
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		if !readable(t, fd, 100*time.Millisecond) {
			continue
		}
		hs, rc := hookClientReady(h, max)
		if rc < 0 {
			t.Fatalf("fastreq_client_ready = %d", rc)
		}
		if rc == 0 {
			t.Fatal("the descriptor was readable with no batch ready")
		}
		got = append(got, hs...)
	}
	if len(got) != want {
		t.Fatalf("%d batches listed ready, want %d", len(got), want)
	}
	return got
}

// TestClientReadyList: batches submitted with FASTREQ_SUBMIT_NOTIFY_CLIENT,
// and only those, are listed once ready; the descriptor is readable exactly
// while some wait to be handed out, also when max leaves some behind.
func TestClientReadyList(t *testing.T) {
	srv := testServers(t)
	h := newClient(t, `{"max_retries":0}`)
	fd := hookClientFD(h)
	if fd < 0 {
		t.Fatalf("fastreq_client_fd = %d", fd)
	}
	if again := hookClientFD(h); again != fd {
		t.Errorf("fastreq_client_fd again = %d, want the same %d", again, fd)
	}
	one := fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/json")
	quiet := submit(t, h, one) // not listed
	defer hookBatchFree(quiet)
	var want []uint64
	for i := 0; i < 5; i++ {
		b, rc, e := hookSubmit(h, []byte(one), rcNotifyClient)
		if rc != 0 {
			t.Fatalf("submit with NOTIFY_CLIENT = %d: %s", rc, e)
		}
		defer hookBatchFree(b)
		want = append(want, b)
	}
	got := takeReady(t, h, fd, len(want), 64)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("ready batches %v, want %v", got, want)
	}
	if readable(t, fd, 0) {
		t.Error("the descriptor stays readable after every ready batch was handed out")
	}
	for _, b := range want {
		if n := hookBatchNext(b, 4, 0); n != 1 {
			t.Errorf("batch %d listed ready has %d records, want 1", b, n)
		}
	}
	if n := hookBatchNext(quiet, 4, 5000); n != 1 {
		t.Errorf("the unlisted batch has %d records, want 1", n)
	}

	// Three ready, taken two at a time: still readable after the first two.
	var three []uint64
	for i := 0; i < 3; i++ {
		b, _, _ := hookSubmit(h, []byte(one), rcNotifyClient)
		defer hookBatchFree(b)
		three = append(three, b)
	}
	for _, b := range three {
		hookBatchWait(b, 5000)
	}
	first, rc := hookClientReady(h, 2)
	if rc != 2 {
		t.Fatalf("first take of 2 = %d", rc)
	}
	if !readable(t, fd, 0) {
		t.Error("the descriptor went quiet with a ready batch left")
	}
	rest, rc := hookClientReady(h, 2)
	if rc != 1 || readable(t, fd, 0) {
		t.Errorf("second take = %d (readable after: %v), want 1 and quiet", rc, readable(t, fd, 0))
	}
	all := append(first, rest...)
	slices.Sort(all)
	if !slices.Equal(all, three) {
		t.Errorf("taken %v, want %v", all, three)
	}
}

// TestClientReadyBadInput: NULL or empty arrays, unknown submit flags and
// handles of the wrong kind or closed give codes, not crashes.
func TestClientReadyBadInput(t *testing.T) {
	srv := testServers(t)
	h, rc, e := hookClientNew([]byte(`{}`))
	if rc != 0 {
		t.Fatalf("client_new = %d: %s", rc, e)
	}
	if _, rc := hookClientReady(h, 0); rc != rcEINVAL {
		t.Errorf("client_ready(max 0) = %d, want EINVAL", rc)
	}
	if _, rc, e := hookSubmit(h, []byte(`[]`), 1<<7); rc != rcEINVAL {
		t.Errorf("submit with unknown flag = %d (%s), want EINVAL", rc, e)
	}
	b := submit(t, h, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/json"))
	if fd := hookClientFD(b); fd != rcBadHandle {
		t.Errorf("client_fd(batch handle) = %d, want EBADHANDLE", fd)
	}
	if _, rc := hookClientReady(b, 4); rc != rcBadHandle {
		t.Errorf("client_ready(batch handle) = %d, want EBADHANDLE", rc)
	}
	hookBatchFree(b)
	hookClientFD(h)
	hookClientClose(h)
	if fd := hookClientFD(h); fd != rcBadHandle {
		t.Errorf("client_fd(closed client) = %d, want EBADHANDLE", fd)
	}
	if _, rc := hookClientReady(h, 4); rc != rcBadHandle {
		t.Errorf("client_ready(closed client) = %d, want EBADHANDLE", rc)
	}
}

// TestClientCloseListsCancelled: closing a client with listed batches in
// flight lists each as it gets its cancelled result, before close returns.
func TestClientCloseListsCancelled(t *testing.T) {
	srv := testServers(t)
	h, rc, _ := hookClientNew([]byte(`{"max_retries":0}`))
	if rc != 0 {
		t.Fatal("client_new failed")
	}
	fd := hookClientFD(h)
	dup, err := syscall.Dup(int(fd)) // as an event loop keeps it: the client closes its own
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dup)
	b, rc, _ := hookSubmit(h, []byte(fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/stall?seconds=30")), rcNotifyClient)
	if rc != 0 {
		t.Fatal("submit failed")
	}
	defer hookBatchFree(b)
	time.Sleep(100 * time.Millisecond)
	if readable(t, int32(dup), 0) {
		t.Fatal("readable while the request stalls")
	}
	hookClientClose(h)
	if !readable(t, int32(dup), 0) {
		t.Error("the descriptor is not readable after close cancelled a listed batch")
	}
	if n := hookBatchNext(b, 1, 0); n != 1 {
		t.Errorf("the cancelled batch has %d records, want 1", n)
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
