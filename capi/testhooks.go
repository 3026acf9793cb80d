//go:build fastreqtest

package main

// Go-typed entry points for the package's tests, fuzz targets and
// benchmarks. cgo is not allowed in _test.go files, so everything that must
// go through the real C ABI lives here: each hook copies its input into C
// memory, calls the exported function through its C symbol (so the call
// crosses the boundary exactly as a C or ctypes caller's does), copies the
// answer back into Go values and frees every C buffer it was handed.
//
// The file, and the package's tests, build only with the fastreqtest tag
// (`go test -tags fastreqtest ./capi`, as `make test` runs them): the
// library never contains them.

/*
#include <stdint.h>
#include <stdlib.h>
// exports.go's package-wide CFLAGS define FASTREQ_TYPES_ONLY (cgo declares
// the exports itself there); this file wants the header's prototypes.
#undef FASTREQ_TYPES_ONLY
#include "queue.h"

// C loops for the benchmarks, so that they time C-to-Go calls as a C
// caller makes them, not Go-to-C-to-Go round trips.
static int64_t hook_done_loop(uint64_t batch, int64_t n) {
	int64_t sum = 0;
	for (int64_t i = 0; i < n; i++) sum += fastreq_batch_done(batch);
	return sum;
}

static int64_t hook_wait0_loop(uint64_t batch, int64_t n) {
	int64_t sum = 0;
	for (int64_t i = 0; i < n; i++) sum += fastreq_batch_wait(batch, 0);
	return sum;
}

// Drains a batch in chunks until a short read, releasing every record.
// Returns the number of records, or a negative code.
static int64_t hook_drain_all(uint64_t batch, int32_t chunk) {
	fastreq_record_t *recs = malloc(sizeof *recs * (size_t)chunk);
	if (!recs) return -1;
	int64_t total = 0;
	for (;;) {
		int32_t n = fastreq_batch_drain(batch, recs, chunk);
		if (n < 0) { total = n; break; }
		fastreq_records_release(recs, n);
		total += n;
		if (n < chunk) break;
	}
	free(recs);
	return total;
}
*/
import "C"

import (
	"unsafe"

	"github.com/fastreq/fastreq/core"
)

// hookRecord is a drained record with its buffers copied into Go memory.
type hookRecord struct {
	Index    int64
	Type     int32
	Status   int32
	Error    int32
	Reserved int32  // always 0
	Body     []byte // nil when body_len was 0
	Meta     string // "" for CHUNK records
}

// cInput copies b into C memory; the caller frees it with C.free (nil for
// an empty input, sent as NULL with length 0).
func cInput(b []byte) (*C.char, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.char)(C.CBytes(b)), C.size_t(len(b))
}

// takeError copies and frees an error string the library handed out.
func takeError(p *C.char) string {
	if p == nil {
		return ""
	}
	s := C.GoString(p)
	C.fastreq_free(unsafe.Pointer(p))
	return s
}

func hookClientNew(cfg []byte) (h uint64, rc int32, errJSON string) {
	p, n := cInput(cfg)
	defer C.free(unsafe.Pointer(p))
	var out C.uint64_t
	var errp *C.char
	rc = int32(C.fastreq_client_new(p, n, &out, &errp))
	return uint64(out), rc, takeError(errp)
}

func hookClientClose(h uint64) int32 { return int32(C.fastreq_client_close(C.uint64_t(h))) }

func hookSetCookies(h uint64, cookies []byte) (rc int32, errJSON string) {
	p, n := cInput(cookies)
	defer C.free(unsafe.Pointer(p))
	var errp *C.char
	rc = int32(C.fastreq_client_set_cookies(C.uint64_t(h), p, n, &errp))
	return rc, takeError(errp)
}

func hookSubmit(client uint64, reqs []byte, flags uint32) (h uint64, rc int32, errJSON string) {
	p, n := cInput(reqs)
	defer C.free(unsafe.Pointer(p))
	var out C.uint64_t
	var errp *C.char
	rc = int32(C.fastreq_batch_submit(C.uint64_t(client), p, n, C.uint32_t(flags), &out, &errp))
	return uint64(out), rc, takeError(errp)
}

func hookBatchFD(h uint64) int32 { return int32(C.fastreq_batch_fd(C.uint64_t(h))) }

// hookBatchNext calls fastreq_batch_next with room for max records (none:
// a NULL array) and releases what it drained; it returns the count or
// the negative code.
func hookBatchNext(h uint64, max int, ms int32) int32 {
	if max <= 0 {
		return int32(C.fastreq_batch_next(C.uint64_t(h), nil, C.int32_t(max), C.int32_t(ms)))
	}
	buf := (*C.fastreq_record_t)(C.calloc(C.size_t(max), C.size_t(unsafe.Sizeof(C.fastreq_record_t{}))))
	defer C.free(unsafe.Pointer(buf))
	n := C.fastreq_batch_next(C.uint64_t(h), buf, C.int32_t(max), C.int32_t(ms))
	if n > 0 {
		C.fastreq_records_release(buf, n)
	}
	return int32(n)
}

func hookBatchSetWake(h uint64, min, delayUS int) int32 {
	return int32(C.fastreq_batch_set_wake(C.uint64_t(h), C.int32_t(min), C.int32_t(delayUS)))
}

func hookFreeOSMemory() int32 { return int32(C.fastreq_free_os_memory()) }

// hookLogWaiting reads fastreq_log_counter's counter as a C caller does.
func hookLogWaiting() int64 { return int64(*C.fastreq_log_counter()) }

func hookBatchWait(h uint64, ms int32) int32 {
	return int32(C.fastreq_batch_wait(C.uint64_t(h), C.int32_t(ms)))
}
func hookBatchDone(h uint64) int32   { return int32(C.fastreq_batch_done(C.uint64_t(h))) }
func hookBatchCancel(h uint64) int32 { return int32(C.fastreq_batch_cancel(C.uint64_t(h))) }
func hookBatchFree(h uint64) int32   { return int32(C.fastreq_batch_free(C.uint64_t(h))) }
func hookLiveBuffers() int64         { return int64(C.fastreq_live_buffers()) }
func hookLiveHandles() int64         { return int64(C.fastreq_live_handles()) }

// hookBatchDrain drains up to max records through the C ABI, copies them
// into Go values and releases their C buffers. rc is the drain's return
// value when it is negative, else 0.
func hookBatchDrain(h uint64, max int) (recs []hookRecord, rc int32) {
	return drainRecords(h, max, false)
}

// hookBatchDrainFreeEach is hookBatchDrain, releasing each body and meta
// with fastreq_free instead of fastreq_records_release.
func hookBatchDrainFreeEach(h uint64, max int) (recs []hookRecord, rc int32) {
	return drainRecords(h, max, true)
}

// copyRecords copies n C records into Go values.
func copyRecords(buf *C.fastreq_record_t, n int) []hookRecord {
	cr := unsafe.Slice(buf, n)
	recs := make([]hookRecord, n)
	for i := range cr {
		r := &cr[i]
		recs[i] = hookRecord{Index: int64(r.index), Type: int32(r._type), Status: int32(r.status), Error: int32(r.error),
			Reserved: int32(r.reserved)}
		if r.body_len > 0 {
			recs[i].Body = C.GoBytes(unsafe.Pointer(r.body), C.int(r.body_len))
		}
		if r.meta != nil {
			recs[i].Meta = C.GoStringN(r.meta, C.int(r.meta_len))
		}
	}
	return recs
}

func drainRecords(h uint64, max int, freeEach bool) (recs []hookRecord, rc int32) {
	if max <= 0 {
		return nil, int32(C.fastreq_batch_drain(C.uint64_t(h), nil, C.int32_t(max)))
	}
	buf := (*C.fastreq_record_t)(C.calloc(C.size_t(max), C.size_t(unsafe.Sizeof(C.fastreq_record_t{}))))
	defer C.free(unsafe.Pointer(buf))
	n := C.fastreq_batch_drain(C.uint64_t(h), buf, C.int32_t(max))
	if n < 0 {
		return nil, int32(n)
	}
	recs = copyRecords(buf, int(n))
	cr := unsafe.Slice(buf, int(n))
	if freeEach {
		for i := range cr {
			C.fastreq_free(unsafe.Pointer(cr[i].body))
			C.fastreq_free(unsafe.Pointer(cr[i].meta))
		}
	} else {
		C.fastreq_records_release(buf, n)
	}
	return recs, 0
}

// hookBatchDrainKeep drains up to max records as a caller that keeps the
// bodies it drained: it returns them (each to be freed with
// fastreq_free) and releases the rest of the records.
func hookBatchDrainKeep(h uint64, max int) (bodies []unsafe.Pointer, rc int32) {
	buf := (*C.fastreq_record_t)(C.calloc(C.size_t(max), C.size_t(unsafe.Sizeof(C.fastreq_record_t{}))))
	defer C.free(unsafe.Pointer(buf))
	n := C.fastreq_batch_drain(C.uint64_t(h), buf, C.int32_t(max))
	if n < 0 {
		return nil, int32(n)
	}
	cr := unsafe.Slice(buf, int(n))
	for i := range cr {
		if cr[i].body != nil {
			bodies = append(bodies, unsafe.Pointer(cr[i].body))
			cr[i].body = nil
		}
	}
	C.fastreq_records_release(buf, n)
	return bodies, 0
}

func hookFree(p unsafe.Pointer) { C.fastreq_free(p) }

// hookDoneLoop calls fastreq_batch_done n times from C; it returns the
// sum of the results (n for a finished batch).
func hookDoneLoop(batch uint64, n int) int64 {
	return int64(C.hook_done_loop(C.uint64_t(batch), C.int64_t(n)))
}

// hookWait0Loop calls fastreq_batch_wait(batch, 0) n times from C.
func hookWait0Loop(batch uint64, n int) int64 {
	return int64(C.hook_wait0_loop(C.uint64_t(batch), C.int64_t(n)))
}

// hookDrainAll drains and releases every waiting record from C, in chunks.
func hookDrainAll(batch uint64, chunk int) int64 {
	return int64(C.hook_drain_all(C.uint64_t(batch), C.int32_t(chunk)))
}

// hookValidateRequests runs data through the real fastreq_batch_submit -
// JSON decoding, strict decoding errors, and every request's validation -
// without sending anything: the client it submits to is already closed, so
// core.Client.Submit validates every request and then refuses to start.
// The result is FASTREQ_EINVAL (bad JSON, or with STRICT an invalid
// request) or FASTREQ_ECLOSED (the requests were acceptable); any other
// code is a bug. Without STRICT the submit returns at once and the code
// is what the batch's wait answers, with no error JSON. The closed
// client's handle is removed again before returning, so handle counts
// are unchanged.
func hookValidateRequests(data []byte, flags uint32) (rc int32, errJSON string) {
	h := handles.add(checker(), kindClient)
	defer handles.remove(h)
	b, rc, errJSON := hookSubmit(h, data, flags)
	if rc == C.FASTREQ_OK {
		if flags&C.FASTREQ_SUBMIT_STRICT == 0 {
			rc = hookBatchWait(b, -1)
		}
		hookBatchFree(b)
	}
	return rc, errJSON
}

// hookSyntheticBatch registers a finished batch whose queue already holds
// n RESULT records built from body, exactly as the engine's OnResult
// callback would have queued them (meta JSON and body in C memory). The
// records go through the real drain and release exports; cleanup frees
// the batch and its client.
func hookSyntheticBatch(n int, body []byte) (h uint64, cleanup func()) {
	q := hookQueueNew()
	bt := &batch{c: q.b, handle: q.h}
	bt.total.Store(int64(n))
	headers := map[string]string{"content-type": "application/json", "content-length": "195"}
	for i := 0; i < n; i++ {
		bt.pushResult(&core.NormalizedResponse{
			Index: i, StatusCode: 200, Headers: headers, URL: "http://127.0.0.1:1/x/json",
			HTTPVersion: "HTTP/1.1", Content: body, ContentLength: int64(len(body)), Attempts: 1,
		})
	}
	q.expect(n)
	return q.h, func() { hookBatchFree(q.h) }
}

// hookQueue is a batch that a test feeds in place of the engine: its
// records go through the real queue (queue.c), drained and released
// through the C ABI with its handle.
type hookQueue struct {
	b *C.fq_batch
	h uint64
}

func hookQueueNew() hookQueue {
	b := C.fq_batch_new(C.fq_submit{})
	if b == nil {
		panic("fq_batch_new")
	}
	return hookQueue{b, uint64(C.fq_handle_of(b))}
}

// expect gives the batch's number of RESULT records, as an accepted submit does.
func (q hookQueue) expect(n int) { C.fq_decide(q.b, C.FASTREQ_OK, nil, C.int64_t(n)) }

// push queues a RESULT record with a body of bodyLen bytes (not backed by
// memory: the queue only counts it) and returns fq_push's flags.
func (q hookQueue) push(bodyLen int) int32 {
	rec := C.fastreq_record_t{_type: C.FASTREQ_RECORD_RESULT, body_len: C.int64_t(bodyLen)}
	var delay C.int32_t
	return int32(C.fq_push(q.b, &rec, &delay))
}

// hookLogDrain calls fastreq_log_drain and frees what it returns.
func hookLogDrain() (records string, n int32) {
	var out *C.char
	n = int32(C.fastreq_log_drain(&out))
	if out != nil {
		records = C.GoString(out)
		C.fastreq_free(unsafe.Pointer(out))
	}
	return records, n
}

func hookRequestsCheck(data []byte) (rc int32, errJSON string) {
	p, n := cInput(data)
	defer C.free(unsafe.Pointer(p))
	var errp *C.char
	rc = int32(C.fastreq_requests_check(p, n, &errp))
	return rc, takeError(errp)
}
