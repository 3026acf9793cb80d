package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include <stdlib.h>
#include "queue.h"
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/fastreq/fastreq/core"
	json "github.com/goccy/go-json"
)

// The engine's side of the batches' completion queues (queue.c, which
// hosts call): one goroutine serves the inbox -- it starts submitted
// batches, cancels, abandons and arms delays -- and the engine's
// goroutines push each batch's records into its queue as they complete.
// A host thread therefore enters the Go runtime only to make or close a
// client, never for a batch.

// batch is the engine's view of a submitted batch.
type batch struct {
	c       *C.fq_batch // valid until its last RESULT record is pushed
	handle  uint64
	lean    bool // FASTREQ_SUBMIT_META_ON_FAILURE: no meta on success
	b       *core.Batch
	gone    atomic.Bool  // freed by the host: results are skipped, not encoded
	handled atomic.Int64 // RESULT records pushed or skipped
	skipped atomic.Int64 // RESULT records skipped (fq_skipped tells the queue at the end)
	total   atomic.Int64 // RESULT records the batch produces; -1 until known
	ended   atomic.Bool  // every RESULT record was handled

	// stopAsked is a cancel (stopCancel) or a free (stopAbandon) that came
	// while the batch was starting (b nil); start applies it. Guarded by
	// batches' lock, as b is.
	stopAsked int

	mu    sync.Mutex
	timer *time.Timer // the delay of fastreq_batch_set_wake
}

// batches holds the live batches by handle, for the inbox's cancels,
// abandons and delays.
var batches = struct {
	sync.Mutex
	m map[uint64]*batch
}{m: make(map[uint64]*batch)}

func lookupBatch(h uint64) *batch {
	batches.Lock()
	defer batches.Unlock()
	return batches.m[h]
}

func init() { go serveInbox() }

// serveInbox runs for the life of the process, parked in Go's network
// poller on the inbox's eventfd between messages.
func serveInbox() {
	fd := C.fq_inbox_fd()
	if fd < 0 {
		return // submits fail with FASTREQ_ESYS: they cannot post
	}
	inbox := os.NewFile(uintptr(fd), "fastreq-inbox") // non-blocking: read through the poller
	var counter [8]byte
	for {
		if _, err := inbox.Read(counter[:]); err != nil {
			return
		}
		var posts *C.fq_post
		n := int(C.fq_take_posts(&posts))
		for _, p := range unsafe.Slice(posts, n) {
			handlePost(p)
		}
		C.free(unsafe.Pointer(posts))
	}
}

// bigSubmit: a submit with more JSON than this is decoded on a goroutine
// of its own, so it does not hold up the inbox.
const bigSubmit = 64 << 10

func handlePost(p C.fq_post) {
	defer func() { recover() }() // a message that panics is lost, never the process
	h := uint64(p.handle)
	switch p.kind {
	case C.FQ_SUBMIT:
		if C.fq_submit_of(p.batch).len > bigSubmit {
			go startBatch(p.batch, h)
		} else {
			startBatch(p.batch, h)
		}
	case C.FQ_CANCEL:
		how := stopCancel
		if C.fq_freed(p.handle) != 0 { // cancelled, then freed: nobody reads the cancelled results
			how = stopAbandon
		}
		stop(h, how)
	case C.FQ_ABANDON:
		stop(h, stopAbandon)
	case C.FQ_ARM:
		if bt := lookupBatch(h); bt != nil {
			bt.arm(time.Duration(p.len) * time.Microsecond)
		}
	case C.FQ_RELEASE:
		cFree(p.ptr, int(p.len))
	case C.FQ_DRAINED:
		drainedBig(p.ptr)
	}
}

const (
	stopCancel  = 1
	stopAbandon = 2 // freed: what has not started ends without a result, what runs is skipped as it ends
)

// stop cancels or abandons the batch of h now, or, while it is starting,
// when it has started.
func stop(h uint64, how int) {
	batches.Lock()
	bt := batches.m[h]
	if bt != nil && bt.b == nil {
		bt.stopAsked = max(bt.stopAsked, how)
		bt = nil
	}
	batches.Unlock()
	if bt != nil {
		bt.stop(how)
	}
}

func (bt *batch) stop(how int) {
	if how == stopAbandon {
		bt.gone.Store(true)
		bt.b.Abandon()
	} else {
		bt.b.Cancel()
	}
}

// startBatch decodes and starts a posted batch and gives the host its
// verdict.
func startBatch(cb *C.fq_batch, h uint64) {
	s := C.fq_submit_of(cb)
	bt := &batch{c: cb, handle: h, lean: s.flags&C.FASTREQ_SUBMIT_META_ON_FAILURE != 0}
	bt.total.Store(-1)
	decided := false
	defer func() {
		if r := recover(); r != nil && !decided {
			decide(cb, C.FASTREQ_EINTERNAL, &core.Error{Kind: "internal", Message: fmt.Sprintf("internal error: %v\n%s", r, debug.Stack())})
		}
	}()
	err := bt.start(s)
	decided = true
	if err != nil {
		code, ce := codeOf(err)
		decide(cb, code, ce)
		return
	}
	n := int64(bt.b.Len())
	bt.total.Store(n)
	if bt.handled.Load() == n {
		bt.end()
	}
	C.fq_decide(cb, C.FASTREQ_OK, nil, C.int64_t(n))
}

func (bt *batch) start(s C.fq_submit) error {
	if s.out_null != 0 {
		return errInvalid("batch_out", "batch_out is NULL")
	}
	c, err := lookupAs[*core.Client](uint64(s.client))
	if err != nil {
		return err
	}
	if unknown := s.flags &^ submitFlags; unknown != 0 {
		return errInvalid("flags", "unknown submit flags %#x", uint32(unknown))
	}
	batches.Lock()
	batches.m[bt.handle] = bt
	batches.Unlock()
	b, err := c.SubmitSeq(context.Background(), decodeRequests(goBytes(s.json, s.len)), core.BatchOptions{
		StrictValidation: s.flags&C.FASTREQ_SUBMIT_STRICT != 0,
		OnResult:         bt.pushResult,
		OnChunk:          bt.pushChunk,
		BodyAllocator:    bodyAllocator{},
		HeadersOnFailure: bt.lean,
	})
	batches.Lock()
	if err != nil {
		delete(batches.m, bt.handle)
	} else {
		bt.b = b
	}
	asked := bt.stopAsked
	batches.Unlock()
	if err == nil && asked != 0 {
		bt.stop(asked)
	}
	return err
}

// decide refuses the submit with code and e.
func decide(cb *C.fq_batch, code int32, e *core.Error) {
	b, err := json.Marshal(e)
	if err != nil {
		b = []byte(`{"kind":"internal","message":"unencodable error"}`)
	}
	C.fq_decide(cb, C.int32_t(code), cString(b), 0)
}

// pushResult encodes a result as a RESULT record; it runs on the engine's
// goroutines, so the copies into C memory happen in parallel, not in the
// host's drain. A freed batch's results are skipped: counted, never
// encoded or queued.
func (bt *batch) pushResult(r *core.NormalizedResponse) {
	if bt.gone.Load() {
		releaseBody(r.Content)
		bt.skipped.Add(1)
		bt.handledOne()
		return
	}
	rec := resultRecord(C.int64_t(r.Index), r, !bt.lean || r.Error != nil)
	bt.push(&rec)
	bt.handledOne()
}

func (bt *batch) pushChunk(index int, chunk []byte) error {
	if bt.gone.Load() {
		return nil
	}
	bt.push(&C.fastreq_record_t{
		index:    C.int64_t(index),
		_type:    C.FASTREQ_RECORD_CHUNK,
		body:     cBytes(chunk),
		body_len: C.int64_t(len(chunk)),
	})
	return nil
}

func (bt *batch) push(rec *C.fastreq_record_t) {
	var delayUS C.int32_t
	res := C.fq_push(bt.c, rec, &delayUS) // after the last RESULT, bt.c may be gone
	if res&C.FQ_DROPPED != 0 {
		bt.gone.Store(true)
		releaseRecord(rec)
	}
	if res&C.FQ_ARM_TIMER != 0 {
		bt.arm(time.Duration(delayUS) * time.Microsecond)
	}
}

// handledOne counts a RESULT record pushed or skipped; the one that makes
// the count whole ends the batch.
func (bt *batch) handledOne() {
	if bt.handled.Add(1) == bt.total.Load() {
		bt.end()
	}
}

// arm starts the delay of a bunch: fq_expire wakes the batch's waiters
// after it, unless they were woken meanwhile.
func (bt *batch) arm(d time.Duration) {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if bt.ended.Load() {
		return
	}
	if bt.timer == nil {
		h := C.uint64_t(bt.handle)
		bt.timer = time.AfterFunc(d, func() { C.fq_expire(h) })
		return
	}
	bt.timer.Reset(d)
}

// end forgets a batch whose every RESULT record was handled (once), and
// tells the queue about the skipped ones: every push has returned, so
// that count completes the queue's.
func (bt *batch) end() {
	if !bt.ended.CompareAndSwap(false, true) {
		return
	}
	if n := bt.skipped.Load(); n > 0 {
		C.fq_skipped(bt.c, C.int64_t(n))
	}
	batches.Lock()
	delete(batches.m, bt.handle)
	batches.Unlock()
	bt.mu.Lock()
	if bt.timer != nil {
		bt.timer.Stop()
	}
	bt.mu.Unlock()
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

func releaseRecord(r *C.fastreq_record_t) {
	cFree(unsafe.Pointer(r.body), int(r.body_len))
	cFree(unsafe.Pointer(r.meta), int(r.meta_len))
	r.body, r.meta, r.body_len, r.meta_len = nil, nil, 0, 0
}
