package main

/*
#include <stdint.h>
#include <stdlib.h>
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// liveBuffers counts buffers handed to C and not yet freed, for leak tests.
var liveBuffers atomic.Int64

// Big buffers (bigBuffer bytes and up) are mapped pages of their own, not
// malloc'd: malloc would raise its mmap threshold after the first such
// free and serve later ones from per-thread arenas that keep the memory
// (measured: 500 bodies of 1 MiB peaked at ~930 MiB RSS, 1.85x the bytes
// kept). Released, they are kept for reuse up to bigPoolMax, else unmapped. Big bodies of a known
// length are read straight into them (bodyAllocator), so they are never
// copied and never become Go garbage either.
const bigBuffer = 128 << 10

// bigPoolMax bounds the released big buffers kept for reuse. Fresh pages
// cost a fault and zeroing each (measured: half the CPU of 500 bodies of
// 1 MiB went to clear_page), so buffers are reused, up to this much.
const bigPoolMax = 64 << 20

// bigBuffers maps each live big buffer to its mapped length (which munmap
// needs and fastreq_free is not told), and keeps released ones for reuse.
// Mapped lengths are powers of two from bigBuffer up, so buffers fit again.
var bigBuffers = struct {
	sync.Mutex
	live map[uintptr]int
	free map[int][][]byte // mapped length -> released buffers
	kept int              // bytes in free
}{live: map[uintptr]int{}, free: map[int][][]byte{}}

func mapBig(n int) []byte {
	size := bigBuffer
	for size < n {
		size <<= 1
	}
	var b []byte
	bigBuffers.Lock()
	if l := bigBuffers.free[size]; len(l) > 0 {
		b = l[len(l)-1]
		bigBuffers.free[size] = l[:len(l)-1]
		bigBuffers.kept -= size
	}
	bigBuffers.Unlock()
	if b == nil {
		var err error
		b, err = syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			panic("out of memory: mmap: " + err.Error())
		}
	}
	bigBuffers.Lock()
	bigBuffers.live[uintptr(unsafe.Pointer(&b[0]))] = size
	bigBuffers.Unlock()
	liveBuffers.Add(1)
	return b[:n]
}

// unmapBig releases p if it is a big buffer and reports whether it was.
func unmapBig(p unsafe.Pointer) bool {
	bigBuffers.Lock()
	size, ok := bigBuffers.live[uintptr(p)]
	delete(bigBuffers.live, uintptr(p))
	b := unsafe.Slice((*byte)(p), size)
	keep := ok && bigBuffers.kept+size <= bigPoolMax
	if keep {
		bigBuffers.free[size] = append(bigBuffers.free[size], b)
		bigBuffers.kept += size
	}
	bigBuffers.Unlock()
	if ok {
		if !keep {
			syscall.Munmap(b)
		}
		liveBuffers.Add(-1)
	}
	return ok
}

// dropBigPool unmaps the released big buffers kept for reuse.
func dropBigPool() {
	bigBuffers.Lock()
	free := bigBuffers.free
	bigBuffers.free, bigBuffers.kept = map[int][][]byte{}, 0
	bigBuffers.Unlock()
	for _, l := range free {
		for _, b := range l {
			syscall.Munmap(b)
		}
	}
}

// bodyAllocator gives the engine big buffers to read bodies into.
type bodyAllocator struct{}

func (bodyAllocator) Alloc(n int) []byte {
	if n < bigBuffer {
		return nil // malloc and one copy are cheaper than a mapping
	}
	return mapBig(n)
}

func (bodyAllocator) Free(b []byte) { unmapBig(unsafe.Pointer(&b[0])) }

// cBody hands a result body to C: a big buffer from bodyAllocator as it
// is, anything else copied.
func cBody(b []byte) *C.uint8_t {
	if len(b) >= bigBuffer && isBig(unsafe.Pointer(&b[0])) {
		return (*C.uint8_t)(unsafe.Pointer(&b[0]))
	}
	return cBytes(b)
}

func isBig(p unsafe.Pointer) bool {
	bigBuffers.Lock()
	_, ok := bigBuffers.live[uintptr(p)]
	bigBuffers.Unlock()
	return ok
}

// cBytes copies b into C memory the caller frees with fastreq_free. It
// returns nil for an empty slice.
func cBytes(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	if len(b) >= bigBuffer {
		buf := mapBig(len(b))
		copy(buf, b)
		return (*C.uint8_t)(unsafe.Pointer(&buf[0]))
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

// cFree frees one buffer from cBytes or cString; nil is ignored.
func cFree(p unsafe.Pointer) {
	if p == nil || unmapBig(p) {
		return
	}
	C.free(p)
	liveBuffers.Add(-1)
}

// freeSized frees a buffer of n bytes from cBytes or cString without the
// big-buffer lookup cFree needs when the size says it is malloc'd.
func freeSized(p unsafe.Pointer, n int) {
	if p == nil || (n >= bigBuffer && unmapBig(p)) {
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
