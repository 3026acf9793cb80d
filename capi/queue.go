package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include <stdint.h>
#include "fastreq.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/fastreq/fastreq/core"
	json "github.com/goccy/go-json"
)

// queue is a batch's completion queue. Engine goroutines push records; the
// C caller drains them in chunks. The eventfd (and the notify channel for
// fastreq_batch_wait) is signalled when the records waiting reach the wake
// threshold -- by default one, so when the queue goes from empty to
// non-empty -- so a caller that reads the fd and then drains until a short
// read never misses a wakeup and is not woken once per record.
//
// A caller that wants the whole batch rather than each result as it lands
// raises the threshold (fastreq_batch_set_wake): it is then woken when
// that many records wait, when the waiting bodies hold minBytes, or when
// the last result arrives -- one wakeup per bunch, not per burst.
//
// The eventfd is made on the first fastreq_batch_fd call: a caller that
// only waits with fastreq_batch_wait (every synchronous caller) never pays
// the three system calls it costs per batch.
type queue struct {
	mu      sync.Mutex
	items   []C.fastreq_record_t
	head    int
	total   int   // RESULT records the batch will produce
	pushed  int   // RESULT records pushed so far
	drained int   // RESULT records drained so far
	bytes   int64 // body bytes of the waiting records
	want    int   // the wake threshold in records (>= 1)
	closed  bool
	gone    atomic.Bool // closed, readable without mu
	notify  chan struct{}
	efd     int  // -1 until fd() is first called
	lean    bool // FASTREQ_SUBMIT_META_ON_FAILURE: no meta on success
}

// minBytes: with a raised threshold, waiters are woken anyway once the
// waiting bodies hold this much, so bodies do not pile up unseen.
const minBytes = 4 << 20

func newQueue(total int) *queue {
	q := &queue{notify: make(chan struct{}, 1), efd: -1, want: 1}
	q.expect(total)
	return q
}

// expect sets the number of results the batch will produce, before the
// first is pushed.
func (q *queue) expect(total int) {
	q.mu.Lock()
	q.total = total
	q.mu.Unlock()
	if total > 0 {
		unfinished.Add(1)
	}
}

// awake reports whether a waiter should be up: the caller holds q.mu.
func (q *queue) awake() bool {
	n := len(q.items) - q.head
	return n >= q.want || q.bytes >= minBytes || q.pushed == q.total || q.closed
}

// setWake sets the wake threshold; when it is already met (records
// waiting, a lower threshold) the waiters are woken at once.
func (q *queue) setWake(want int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.want = max(want, 1)
	if q.awake() && !q.closed {
		q.signal()
	}
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
		if q.head < len(q.items) && q.awake() {
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
	if q.closed { // the batch was freed: nobody drains this record
		q.mu.Unlock()
		releaseRecord(&r)
		return
	}
	was := q.awake()
	q.items = append(q.items, r)
	q.bytes += int64(r.body_len)
	if r._type == C.FASTREQ_RECORD_RESULT {
		q.pushed++
		if q.pushed == q.total {
			unfinished.Add(-1) // before the waiter wakes: it reads the count on return
		}
	}
	if !was && q.awake() {
		q.signal()
	}
	q.mu.Unlock()
}

// signal wakes the fd's watcher and a blocked waiter. The caller holds
// q.mu and the queue is open: close, which closes both, cannot run
// between (records go on being pushed after a free, from the engine).
func (q *queue) signal() {
	if q.efd >= 0 {
		signalEventFD(q.efd)
	}
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// pushResult encodes a result as a RESULT record; it runs on the engine's
// goroutines, so the copies into C memory happen in parallel, not in the
// caller's drain.
func (q *queue) pushResult(r *core.NormalizedResponse) {
	if q.gone.Load() { // freed: what is left of the batch is dropped, not encoded
		releaseBody(r.Content)
		return
	}
	q.push(resultRecord(C.int64_t(r.Index), r, !q.lean || r.Error != nil))
}

// resultRecord is r as a RESULT record under index: the body in C memory,
// and with withMeta the metadata JSON.
func resultRecord(index C.int64_t, r *core.NormalizedResponse, withMeta bool) C.fastreq_record_t {
	rec := C.fastreq_record_t{
		index:    index,
		_type:    C.FASTREQ_RECORD_RESULT,
		status:   C.int32_t(r.StatusCode),
		error:    errorCode(r.Error),
		body:     cBody(r.Content),
		body_len: C.int64_t(len(r.Content)),
	}
	if withMeta {
		meta, err := json.Marshal(r)
		if err != nil {
			meta = []byte(`{"error":{"kind":"internal","message":"unencodable response"}}`)
		}
		rec.meta, rec.meta_len = cString(meta), C.int64_t(len(meta))
	}
	return rec
}

func (q *queue) pushChunk(index int, chunk []byte) error {
	q.push(C.fastreq_record_t{
		index:    C.int64_t(index),
		_type:    C.FASTREQ_RECORD_CHUNK,
		body:     cBytes(chunk),
		body_len: C.int64_t(len(chunk)),
	})
	return nil
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

// wait blocks until the wake threshold is met (see queue), the batch is
// done, or timeout passes (negative: no limit). It returns the number of
// records waiting.
func (q *queue) wait(timeout time.Duration) int {
	var deadline <-chan time.Time
	if timeout > 0 { // 0 only checks: no timer
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	for {
		q.mu.Lock()
		n, up := len(q.items)-q.head, q.awake()
		q.mu.Unlock()
		if up || timeout == 0 {
			return n
		}
		select {
		case <-q.notify:
		case <-deadline:
			n, _ := q.waiting()
			return n
		}
	}
}

// close releases records nobody drained and the eventfd; records pushed
// after it are released at once.
func (q *queue) close() {
	q.mu.Lock()
	rest := q.items[q.head:]
	q.items, q.head = nil, 0
	if !q.closed && q.pushed < q.total {
		unfinished.Add(-1)
	}
	if !q.closed {
		close(q.notify) // wakes every fastreq_batch_wait still blocked
		if q.efd >= 0 {
			syscall.Close(q.efd)
		}
	}
	q.closed = true
	q.gone.Store(true)
	q.mu.Unlock()
	for i := range rest {
		releaseRecord(&rest[i])
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
