package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include <stdint.h>
#include "fastreq.h"
*/
import "C"

import (
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// queue is a batch's completion queue. Engine goroutines push records; the
// C caller drains them in chunks. The eventfd (and the notify channel for
// fastreq_batch_wait) is signalled only when the queue goes from empty to
// non-empty, so a caller that reads the fd and then drains until a short
// read never misses a wakeup and is not woken once per record.
//
// The eventfd is made on the first fastreq_batch_fd call: a caller that
// only waits with fastreq_batch_wait (every synchronous caller) never pays
// the three system calls it costs per batch.
//
// A waiter may ask for a bunch instead (fastreq_batch_next_min): it is
// woken when want records or minBytes of bodies are waiting, or the last
// result arrives, so a caller that only needs the whole batch pays one
// wakeup per bunch, not one per burst of completions.
type queue struct {
	mu      sync.Mutex
	items   []C.fastreq_record_t
	head    int
	total   int   // RESULT records the batch will produce
	pushed  int   // RESULT records pushed so far
	drained int   // RESULT records drained so far
	bytes   int64 // body bytes of the waiting records
	want    int   // the blocked waiter's record threshold (1: any record)
	closed  bool
	notify  chan struct{}
	efd     int  // -1 until fd() is first called
	lean    bool // FASTREQ_SUBMIT_META_ON_FAILURE: no meta on success
}

// minBytes: a bunch waiter is woken once the waiting bodies hold this
// much, whatever its record threshold, so bodies do not pile up in
// memory while it sleeps.
const minBytes = 4 << 20

func newQueue(total int) *queue {
	return &queue{total: total, notify: make(chan struct{}, 1), efd: -1, want: 1}
}

// fd returns the batch's eventfd, making it on first use; when records are
// already waiting it is made readable at once.
func (q *queue) fd() (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return -1, syscall.EBADF
	}
	if q.efd < 0 {
		efd, err := newEventFD()
		if err != nil {
			return -1, err
		}
		q.efd = efd
		if q.head < len(q.items) {
			signalEventFD(efd)
		}
	}
	return q.efd, nil
}

func signalEventFD(efd int) {
	var one = [8]byte{1}
	syscall.Write(efd, one[:]) // non-blocking; a full counter still reads as ready
}

func (q *queue) push(r C.fastreq_record_t) {
	q.mu.Lock()
	wasEmpty := q.head == len(q.items)
	q.items = append(q.items, r)
	q.bytes += int64(r.body_len)
	if r._type == C.FASTREQ_RECORD_RESULT {
		q.pushed++
	}
	n := len(q.items) - q.head
	wake := n >= q.want || q.pushed == q.total || q.bytes >= minBytes
	efd := q.efd
	q.mu.Unlock()
	if wasEmpty && efd >= 0 {
		signalEventFD(efd)
	}
	if wake {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
}

// drain moves up to len(dst) records into dst.
func (q *queue) drain(dst []C.fastreq_record_t) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := copy(dst, q.items[q.head:])
	for i := 0; i < n; i++ {
		if dst[i]._type == C.FASTREQ_RECORD_RESULT {
			q.drained++
		}
		q.bytes -= int64(dst[i].body_len)
		q.items[q.head+i] = C.fastreq_record_t{}
	}
	q.head += n
	if q.head == len(q.items) {
		// Reuse the backing array once it is empty; drop it when it grew
		// large so a finished burst does not pin memory.
		if cap(q.items) > 4096 {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
	}
	return n
}

func (q *queue) waiting() (n int, done bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n = len(q.items) - q.head
	return n, (n == 0 && q.drained == q.total) || q.closed
}

// wait blocks until records are waiting, the batch is done, or timeout
// passes (negative: no limit).
func (q *queue) wait(timeout time.Duration) int { return q.waitFor(1, timeout) }

// waitFor blocks until want records (or minBytes of bodies) are waiting,
// every result has been pushed, the queue is closed, or timeout passes.
// It returns the number of records waiting.
func (q *queue) waitFor(want int, timeout time.Duration) int {
	var deadline <-chan time.Time
	if timeout > 0 { // 0 only checks: no timer
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	defer q.setWant(1)
	for {
		q.mu.Lock()
		n := len(q.items) - q.head
		if n >= want || q.pushed == q.total || q.bytes >= minBytes || q.closed || timeout == 0 {
			q.mu.Unlock()
			return n
		}
		q.want = want
		q.mu.Unlock()
		select {
		case <-q.notify:
		case <-deadline:
			n, _ := q.waiting()
			return n
		}
	}
}

func (q *queue) setWant(want int) {
	q.mu.Lock()
	q.want = want
	q.mu.Unlock()
}

// close releases records nobody drained and the eventfd.
func (q *queue) close() {
	q.mu.Lock()
	rest := q.items[q.head:]
	q.items, q.head = nil, 0
	q.closed = true
	efd := q.efd
	q.mu.Unlock()
	close(q.notify) // wakes every fastreq_batch_wait still blocked; nothing pushes after close
	for i := range rest {
		releaseRecord(&rest[i])
	}
	if efd >= 0 {
		syscall.Close(efd)
	}
}

func releaseRecord(r *C.fastreq_record_t) {
	cFree(unsafe.Pointer(r.body), int(r.body_len))
	cFree(unsafe.Pointer(r.meta), int(r.meta_len))
	r.body, r.meta, r.body_len, r.meta_len = nil, nil, 0, 0
}

// newEventFD makes a non-blocking, close-on-exec eventfd.
func newEventFD() (int, error) {
	const efdCloexec, efdNonblock = 0x80000, 0x800
	fd, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, efdCloexec|efdNonblock, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}
