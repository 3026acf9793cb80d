//go:build fastreqtest

package main

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// onOneCPU runs the test as the library runs in a process confined to one
// CPU (one scheduler slot, no GOMAXPROCS in the environment), restoring
// the process's own setting afterwards.
func onOneCPU(t *testing.T) {
	t.Helper()
	prev, prevIntake := runtime.GOMAXPROCS(1), intakeOn.Load()
	oneSlot.Store(true)
	intakeOn.Store(false)
	t.Cleanup(func() {
		oneSlot.Store(false)
		intakeOn.Store(prevIntake)
		runtime.GOMAXPROCS(prev)
	})
	if n := unfinished.Load(); n != 0 {
		t.Fatalf("%d unfinished batches left by earlier tests", n)
	}
}

// TestOneSlotForBlockingCalls: one request at a time, each waited for
// until done, keeps the single slot; so do waits that return only when
// their batch is finished.
func TestOneSlotForBlockingCalls(t *testing.T) {
	srv := testServers(t)
	h := newClient(t, `{"max_retries":0}`)
	onOneCPU(t)
	for i := 0; i < 20; i++ {
		b := submit(t, h, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/json"))
		if n := hookBatchNext(b, 4, 5000); n != 1 {
			t.Fatalf("next = %d, want 1", n)
		}
		hookBatchFree(b)
	}
	// A slow request waited for in slices (as the Python driver does, so
	// that Ctrl-C gets through): the slices that run out do not count.
	b := submit(t, h, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/stall?seconds=0.3"))
	slices := 0
	for n := int32(0); n == 0; slices++ {
		if n = hookBatchNext(b, 4, 50); n < 0 {
			t.Fatalf("next = %d", n)
		}
	}
	hookBatchFree(b)
	if slices < 3 {
		t.Errorf("the stalled request came back after %d slices of 50 ms", slices)
	}
	b = submit(t, h, requests(3, fmt.Sprintf(`{"url":%q}`, srv.HTTPURL+"/x/json")))
	hookBatchSetWake(b, 3)
	if n := hookBatchNext(b, 4, 5000); n != 3 {
		t.Fatalf("next with wake 3 = %d, want 3", n)
	}
	hookBatchFree(b)
	if got := hookSchedulerSlots(); got != 1 {
		t.Errorf("fastreq_scheduler_slots after blocking calls = %d, want 1", got)
	}
	if intakeOn.Load() {
		t.Error("one slot, yet batches start through the intake")
	}
	if n := unfinished.Load(); n != 0 {
		t.Errorf("unfinished = %d after every batch was freed", n)
	}
}

// TestSecondSlotWhenHostRunsDuringRequests: the first time control returns
// to the host while requests are in flight -- a wait returning records
// early, a poll, an eventfd for an event loop -- the library takes a second slot
// (and says so in its log), so the engine does not wait for the host's
// thread to give its slot back.
func TestSecondSlotWhenHostRunsDuringRequests(t *testing.T) {
	srv := testServers(t)
	h := newClient(t, `{"max_retries":0}`)
	fast, stall := srv.HTTPURL+"/x/json", srv.HTTPURL+"/x/stall?seconds=0.3"
	cases := map[string]func(b uint64){
		"next returns early": func(b uint64) {
			if n := hookBatchNext(b, 1, 5000); n != 1 {
				t.Fatalf("next = %d, want 1", n)
			}
		},
		"done polled": func(b uint64) {
			if hookBatchDone(b) != 0 {
				t.Fatal("batch done while a request stalls")
			}
		},
		"wait polled": func(b uint64) { hookBatchWait(b, 0) },
		"event loop":  func(b uint64) { hookBatchFD(b) },
	}
	for name, hostRuns := range cases {
		t.Run(name, func(t *testing.T) {
			hookLogDrain()
			onOneCPU(t)
			b := submit(t, h, fmt.Sprintf(`[{"url":%q},{"url":%q}]`, fast, stall))
			defer hookBatchFree(b)
			hostRuns(b)
			if got := hookSchedulerSlots(); got != 2 {
				t.Errorf("fastreq_scheduler_slots = %d, want 2", got)
			}
			if !intakeOn.Load() {
				t.Error("two slots on one CPU, but batches do not start through the intake")
			}
			if logs, _ := hookLogDrain(); !strings.Contains(logs, "a second scheduler slot") {
				t.Errorf("no log record of the second slot in %s", logs)
			}
		})
	}
}

// TestSlotsFromEnvironmentStay: with GOMAXPROCS set in the environment
// (oneSlot false at load) the library never changes it.
func TestSlotsFromEnvironmentStay(t *testing.T) {
	srv := testServers(t)
	h := newClient(t, `{"max_retries":0}`)
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	b := submit(t, h, fmt.Sprintf(`[{"url":%q},{"url":%q}]`, srv.HTTPURL+"/x/json", srv.HTTPURL+"/x/stall?seconds=0.3"))
	hookBatchFD(b)
	hookBatchNext(b, 1, 5000)
	hookBatchFree(b)
	if got := hookSchedulerSlots(); got != 1 {
		t.Errorf("fastreq_scheduler_slots = %d, want the 1 set before", got)
	}
}

// TestMailboxKeepsOneSlot: a host that only posts and takes through the
// mailbox never enters the runtime between requests, so a one-CPU process
// keeps its single slot.
func TestMailboxKeepsOneSlot(t *testing.T) {
	srv := testServers(t)
	h := newClient(t, `{"max_retries":0}`)
	onOneCPU(t)
	m, rc := hookClientMailbox(h)
	if rc != 0 {
		t.Fatalf("fastreq_client_mailbox = %d", rc)
	}
	defer hookMailboxFree(m)
	for tag := int64(1); tag <= 10; tag++ {
		hookMailboxPost(m, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/json"), tag)
		if r := takeMail(t, m, 1, 4)[tag]; r.Status != 200 {
			t.Fatalf("tag %d: status %d error %d", tag, r.Status, r.Error)
		}
	}
	if got := hookSchedulerSlots(); got != 1 {
		t.Errorf("fastreq_scheduler_slots = %d after mailbox requests, want 1", got)
	}
}
