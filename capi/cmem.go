package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include <stdint.h>
#include <stdlib.h>
#include "queue.h"
*/
import "C"

import (
	"sync/atomic"
	"unsafe"
)

// liveBuffers counts buffers handed to C and not yet freed, for leak
// tests; queue.c counts the small ones it frees itself.
var liveBuffers = (*atomic.Int64)(unsafe.Pointer(&C.fq_live_buffers))

// cBytes copies b into C memory the caller frees with fastreq_free. It
// returns nil for an empty slice.
func cBytes(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	if len(b) >= bigBuffer {
		if buf := mapBig(len(b), nil); buf != nil {
			copy(buf, b)
			handBig(unsafe.Pointer(&buf[0]), true)
			return (*C.uint8_t)(unsafe.Pointer(&buf[0]))
		}
	}
	p := C.malloc(C.size_t(len(b)))
	if p == nil {
		panic("out of C memory")
	}
	copy(unsafe.Slice((*byte)(p), len(b)), b)
	liveBuffers.Add(1)
	return (*C.uint8_t)(p)
}

// cString copies b into a NUL-terminated C string.
func cString(b []byte) *C.char {
	p := C.malloc(C.size_t(len(b) + 1))
	if p == nil {
		panic("out of C memory")
	}
	dst := unsafe.Slice((*byte)(p), len(b)+1)
	copy(dst, b)
	dst[len(b)] = 0
	liveBuffers.Add(1)
	return (*C.char)(p)
}

// cFree frees one buffer from cBytes or cString; nil is ignored. n is its
// length, or -1 when unknown: a known small length skips the big-buffer
// lookup, which every record release would otherwise pay.
func cFree(p unsafe.Pointer, n int) {
	if p == nil || ((n < 0 || n >= bigBuffer) && releaseBig(p)) {
		return
	}
	C.free(p)
	liveBuffers.Add(-1)
}

// goBytes views C memory as a Go slice without copying; only valid while
// the caller's buffer is, i.e. during the export call.
func goBytes(p *C.char, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}
