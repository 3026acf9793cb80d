package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include <stdint.h>
#include <stdlib.h>
#include "fastreq.h"
*/
import "C"

import (
	"context"
	"runtime"
	"runtime/debug"
	"time"
	"unsafe"

	"github.com/fastreq/fastreq/core"
)

var versionString = C.CString(core.Version) // static for the process's life

const submitFlags = C.FASTREQ_SUBMIT_STRICT | C.FASTREQ_SUBMIT_META_ON_FAILURE

// batch is the C view of a core batch: its completion queue.
type batch struct {
	b *core.Batch
	q *queue
}

//export fastreq_version
func fastreq_version() *C.char { return versionString }

//export fastreq_abi_version
func fastreq_abi_version() C.int32_t { return C.FASTREQ_ABI_VERSION }

//export fastreq_free
func fastreq_free(p unsafe.Pointer) {
	defer func() { recover() }()
	cFree(p, -1)
}

//export fastreq_records_release
func fastreq_records_release(recs *C.fastreq_record_t, n C.int32_t) {
	defer func() { recover() }()
	if recs == nil || n <= 0 {
		return
	}
	rs := unsafe.Slice(recs, int(n))
	for i := range rs {
		releaseRecord(&rs[i])
	}
}

//export fastreq_live_buffers
func fastreq_live_buffers() C.int64_t { return C.int64_t(liveBuffers.Load()) }

//export fastreq_live_handles
func fastreq_live_handles() C.int64_t { return C.int64_t(handles.len()) }

//export fastreq_set_memory_limit
func fastreq_set_memory_limit(limit C.int64_t) (prev C.int64_t) {
	defer func() { recover() }()
	return C.int64_t(debug.SetMemoryLimit(int64(limit)))
}

//export fastreq_scheduler_slots
func fastreq_scheduler_slots() C.int32_t {
	defer func() { recover() }()
	return C.int32_t(runtime.GOMAXPROCS(0))
}

//export fastreq_free_os_memory
func fastreq_free_os_memory() C.int32_t {
	defer func() { recover() }()
	dropBigPool()
	debug.FreeOSMemory()
	return C.FASTREQ_OK
}

//export fastreq_log_counter
func fastreq_log_counter() *C.int64_t { return (*C.int64_t)(unsafe.Pointer(logCounter)) }

//export fastreq_log_drain
func fastreq_log_drain(out **C.char) C.int32_t {
	return callCount(func() (int, error) {
		if out == nil {
			return 0, errInvalid("out", "out is NULL")
		}
		*out = nil
		b, count := drainLogs()
		if count > 0 {
			*out = cString(b)
		}
		return count, nil
	})
}

//export fastreq_client_new
func fastreq_client_new(cfgJSON *C.char, n C.size_t, out *C.uint64_t, errOut **C.char) C.int32_t {
	return call(errOut, func() error {
		if out == nil {
			return errInvalid("client_out", "client_out is NULL")
		}
		cfg := core.DefaultClientConfig()
		if data := goBytes(cfgJSON, n); len(data) > 0 {
			if err := decodeStrict("client config", data, &cfg); err != nil {
				return err
			}
		}
		cfg.Logger = loggerFor(&cfg)
		c, err := core.NewClient(cfg)
		if err != nil {
			return err
		}
		*out = C.uint64_t(handles.add(wrapClient(c), kindClient))
		return nil
	})
}

//export fastreq_client_close
func fastreq_client_close(h C.uint64_t) C.int32_t {
	return call(nil, func() error {
		c, err := lookupAs[*client](uint64(h))
		if err != nil {
			if handles.wasClosed(uint64(h), kindClient) {
				return nil // already closed: closing again is a no-op
			}
			return err // never a client (a freed batch is not a closed client)
		}
		handles.remove(uint64(h))
		err = c.Close() // the last records are pushed before it returns
		if c.mbox != nil {
			c.mbox.close()
		}
		return err
	})
}

//export fastreq_client_set_cookies
func fastreq_client_set_cookies(h C.uint64_t, cookiesJSON *C.char, n C.size_t, errOut **C.char) C.int32_t {
	return call(errOut, func() error {
		c, err := lookupAs[*client](uint64(h))
		if err != nil {
			return err
		}
		var m map[string]string
		if err := decodeStrict("cookies", goBytes(cookiesJSON, n), &m); err != nil {
			return err
		}
		return c.SetCookies(m)
	})
}

//export fastreq_client_reset_cookies
func fastreq_client_reset_cookies(h C.uint64_t) C.int32_t {
	return call(nil, func() error {
		c, err := lookupAs[*client](uint64(h))
		if err != nil {
			return err
		}
		c.ResetCookies()
		return nil
	})
}

//export fastreq_batch_submit
func fastreq_batch_submit(h C.uint64_t, reqJSON *C.char, n C.size_t, flags C.uint32_t, out *C.uint64_t, errOut **C.char) C.int32_t {
	return call(errOut, func() error {
		if out == nil {
			return errInvalid("batch_out", "batch_out is NULL")
		}
		c, err := lookupAs[*client](uint64(h))
		if err != nil {
			return err
		}
		if unknown := flags &^ submitFlags; unknown != 0 {
			return errInvalid("flags", "unknown submit flags %#x", uint32(unknown))
		}
		q := newQueue(0) // its total is known once the requests are decoded
		q.lean = flags&C.FASTREQ_SUBMIT_META_ON_FAILURE != 0
		bt := &batch{q: q}
		opts := core.BatchOptions{
			StrictValidation: flags&C.FASTREQ_SUBMIT_STRICT != 0,
			OnResult:         q.pushResult,
			OnChunk:          q.pushChunk,
			BodyAllocator:    bodyAllocator{},
			Start: func(n int, dispatch func()) {
				q.expect(n) // before any result: nothing runs until dispatch
				startBatch(dispatch)
			},
		}
		bt.b, err = c.SubmitSeq(context.Background(), decodeRequests(goBytes(reqJSON, n)), opts)
		if err != nil {
			q.close()
			return err
		}
		*out = C.uint64_t(handles.add(bt, kindBatch))
		return nil
	})
}

//export fastreq_batch_fd
func fastreq_batch_fd(h C.uint64_t) (fd C.int32_t) {
	fd = C.FASTREQ_EBADHANDLE
	call(nil, func() error {
		bt, err := lookupAs[*batch](uint64(h))
		if err != nil {
			return err
		}
		efd, err := bt.q.fd()
		if err != nil {
			fd = C.FASTREQ_ESYS
			return &apiError{C.FASTREQ_ESYS, &core.Error{Kind: "system", Message: "eventfd: " + err.Error()}}
		}
		fd = C.int32_t(efd)
		hostWillRun(true) // an event loop: the host runs between wakeups
		return nil
	})
	return fd
}

//export fastreq_client_mailbox
func fastreq_client_mailbox(h C.uint64_t, out **C.fastreq_mailbox_t) C.int32_t {
	return call(nil, func() error {
		c, err := lookupAs[*client](uint64(h))
		if err != nil {
			return err
		}
		if out == nil {
			return errInvalid("mailbox_out", "mailbox_out is NULL")
		}
		mb, err := c.mailboxOf()
		if err != nil {
			return &apiError{C.FASTREQ_ESYS, &core.Error{Kind: "system", Message: "mailbox: " + err.Error()}}
		}
		*out = mb.m
		return nil
	})
}

//export fastreq_batch_wait
func fastreq_batch_wait(h C.uint64_t, timeoutMS C.int32_t) C.int32_t {
	return callCount(func() (int, error) {
		bt, err := lookupAs[*batch](uint64(h))
		if err != nil {
			return 0, err
		}
		n := bt.q.wait(waitTimeout(timeoutMS))
		afterWait(n, int32(timeoutMS))
		return n, nil
	})
}

// waitTimeout maps the ABI's timeout_ms (0 = check, negative = no limit).
func waitTimeout(ms C.int32_t) time.Duration {
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

//export fastreq_batch_next
func fastreq_batch_next(h C.uint64_t, recs *C.fastreq_record_t, max C.int32_t, timeoutMS C.int32_t) C.int32_t {
	return callCount(func() (int, error) {
		bt, err := lookupAs[*batch](uint64(h))
		if err != nil {
			return 0, err
		}
		if recs == nil || max <= 0 {
			return 0, errInvalid("records", "records is NULL or max is not positive")
		}
		bt.q.wait(waitTimeout(timeoutMS))
		n := bt.q.drain(unsafe.Slice(recs, int(max)))
		afterWait(n, int32(timeoutMS))
		return n, nil
	})
}

//export fastreq_batch_set_wake
func fastreq_batch_set_wake(h C.uint64_t, minRecords C.int32_t) C.int32_t {
	return call(nil, func() error {
		bt, err := lookupAs[*batch](uint64(h))
		if err != nil {
			return err
		}
		if minRecords < 1 {
			return errInvalid("min_records", "min_records must be at least 1")
		}
		bt.q.setWake(int(minRecords))
		return nil
	})
}

//export fastreq_batch_drain
func fastreq_batch_drain(h C.uint64_t, recs *C.fastreq_record_t, max C.int32_t) C.int32_t {
	return callCount(func() (int, error) {
		bt, err := lookupAs[*batch](uint64(h))
		if err != nil || max == 0 {
			return 0, err
		}
		if recs == nil || max < 0 {
			return 0, errInvalid("records", "records is NULL or max is negative")
		}
		n := bt.q.drain(unsafe.Slice(recs, int(max)))
		hostWillRun(false)
		return n, nil
	})
}

//export fastreq_batch_done
func fastreq_batch_done(h C.uint64_t) C.int32_t {
	return callCount(func() (int, error) {
		bt, err := lookupAs[*batch](uint64(h))
		if err != nil {
			return 0, err
		}
		if _, done := bt.q.waiting(); done {
			return 1, nil
		}
		hostWillRun(false)
		return 0, nil
	})
}

//export fastreq_batch_cancel
func fastreq_batch_cancel(h C.uint64_t) C.int32_t {
	return call(nil, func() error {
		bt, err := lookupAs[*batch](uint64(h))
		if err != nil {
			return err
		}
		bt.b.Cancel()
		return nil
	})
}

//export fastreq_batch_free
func fastreq_batch_free(h C.uint64_t) C.int32_t {
	return call(nil, func() error {
		bt, err := lookupAs[*batch](uint64(h))
		if err != nil {
			return err
		}
		if !handles.remove(uint64(h)) {
			return errBadHandle("handle %d is closed", uint64(h))
		}
		// The batch ends in the background: the queue drops what is
		// pushed after close, so freeing never waits for the engine to
		// cancel what it had queued.
		bt.b.Abandon()
		bt.q.close()
		return nil
	})
}
