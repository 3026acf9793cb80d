package main

/*
#include <stdint.h>
#include "queue.h"
*/
import "C"

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Big buffers (bigBuffer bytes and up) are mapped pages of their own, not
// malloc'd: malloc would raise its mmap threshold after the first such
// free and serve later ones from per-thread arenas that keep the memory.
// Big bodies are read straight into one (bodyAllocator), so they are
// never copied and never become Go garbage; one of unknown length grows
// by remapping (Grow), and one that fails is unmapped at once.
//
// Fresh pages cost a fault and zeroing each, a large part of the work of
// a big download. So released buffers are kept for reuse, up
// to bigPoolMax, and the engine does not run far ahead of a caller that is
// draining: when bigInFlight bytes of bodies are being read or wait to be
// drained, a new read waits for one to be drained (or released undrained)
// -- only while the caller has drained one within bigWaitMax, so a caller
// that drains nothing until its batch ends is never held up. A drained
// body is the caller's (fastreq.h): how long it keeps it before freeing
// it holds no read up.
const (
	bigBuffer   = 64 << 10
	bigPoolMax  = 64 << 20
	bigInFlight = 64 << 20
	bigWaitMax  = time.Second
)

// Each big buffer is a mapping of its own, and the kernel bounds a
// process's mappings (vm.max_map_count, 65,530 by default). Neighbouring
// mappings merge, but a caller that keeps many big bodies and frees some
// here and there leaves one per body; and a Go runtime that cannot map
// memory for its heap ends the process. So the big buffers, live and
// kept for reuse, hold at most a quarter of that bound (bigMappings); past
// it, bodies are read into Go memory and handed over in malloc'd memory
// (glibc maps a big block of its own only until one of that size has been
// freed; then it serves the size from its heap).
var bigMappings = func() int {
	limit := 65530
	if b, err := os.ReadFile("/proc/sys/vm/max_map_count"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			limit = n
		}
	}
	return limit / 4
}()

// bigBuffers maps each live big buffer to its mapped length (which munmap
// needs and fastreq_free is not told), and keeps released ones for reuse.
// Mapped lengths are powers of two from bigBuffer up, so buffers fit again.
var bigBuffers = struct {
	sync.Mutex
	live      map[uintptr]bigLive
	liveBytes int              // mapped lengths of the live buffers not yet drained
	free      map[int][][]byte // mapped length -> released buffers
	kept      int              // bytes in free
	pooled    int              // buffers in free
	mapping   int              // mmap calls under way (they count against bigMappings)
	released  chan struct{}    // made by a waiting read, closed by the next drain or release
	lastDrain time.Time        // when the caller last drained (or released) a buffer
}{live: map[uintptr]bigLive{}, free: map[int][][]byte{}}

type bigLive struct {
	size    int  // mapped length
	handed  bool // holds a body handed to C (cBody, cBytes): only a drain notice follows
	drained bool // the caller drained it: no longer in liveBytes
}

func bigSize(n int) int {
	size := bigBuffer
	for size < n {
		size <<= 1
	}
	return size
}

// mapBig returns a big buffer of n bytes, or nil when the system has no
// memory to map or the mappings are at bigMappings. With a non-nil done,
// it first waits while bigInFlight bytes are in flight and the caller is
// draining (see above), or until done is closed.
func mapBig(n int, done <-chan struct{}) []byte {
	size := bigSize(n)
	bigBuffers.Lock()
	for done != nil && bigBuffers.liveBytes+size > bigInFlight {
		idle := time.Since(bigBuffers.lastDrain)
		if idle >= bigWaitMax {
			break
		}
		if bigBuffers.released == nil {
			bigBuffers.released = make(chan struct{})
		}
		released := bigBuffers.released
		bigBuffers.Unlock()
		timer := time.NewTimer(bigWaitMax - idle)
		select {
		case <-released:
		case <-timer.C:
		case <-done:
			done = nil
		}
		timer.Stop()
		bigBuffers.Lock()
	}
	bigBuffers.liveBytes += size // counted before any mapping: waiters see it at once
	if l := bigBuffers.free[size]; len(l) > 0 {
		b := l[len(l)-1]
		bigBuffers.free[size] = l[:len(l)-1]
		bigBuffers.kept -= size
		bigBuffers.pooled--
		bigBuffers.live[uintptr(unsafe.Pointer(&b[0]))] = bigLive{size: size}
		bigBuffers.Unlock()
		liveBuffers.Add(1)
		return b[:n]
	}
	if len(bigBuffers.live)+bigBuffers.pooled+bigBuffers.mapping >= bigMappings {
		bigBuffers.liveBytes -= size
		bigBuffers.Unlock()
		return nil
	}
	bigBuffers.mapping++
	bigBuffers.Unlock()
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	bigBuffers.Lock()
	bigBuffers.mapping--
	if err != nil {
		bigBuffers.liveBytes -= size
	} else {
		bigBuffers.live[uintptr(unsafe.Pointer(&b[0]))] = bigLive{size: size}
	}
	bigBuffers.Unlock()
	if err != nil {
		return nil
	}
	C.fq_populate(unsafe.Pointer(&b[0]), C.size_t(n), 1) // the n bytes about to be written: one call, not a fault a page
	liveBuffers.Add(1)
	return b[:n]
}

// drainedBig notes that the caller drained p, a big body: the caller is
// draining, and p is no longer in flight (see above). The notice comes
// through the inbox, so the caller may have freed p first (fastreq_free),
// and p may even be a new buffer of the same pages. One still being read
// into is not handed yet, so the notice leaves it alone (a read may still
// grow it); one handed again leaves liveBytes a moment early, once.
func drainedBig(p unsafe.Pointer) {
	bigBuffers.Lock()
	defer bigBuffers.Unlock()
	bigBuffers.lastDrain = time.Now()
	l, ok := bigBuffers.live[uintptr(p)]
	if !ok || !l.handed || l.drained {
		return
	}
	bigBuffers.live[uintptr(p)] = bigLive{size: l.size, handed: true, drained: true}
	bigBuffers.liveBytes -= l.size
	wakeBigLocked()
}

// wakeBigLocked wakes the reads waiting for liveBytes to fall; the caller
// holds bigBuffers' lock.
func wakeBigLocked() {
	if bigBuffers.released != nil {
		close(bigBuffers.released)
		bigBuffers.released = nil
	}
}

// releaseBig releases p if it is a big buffer and reports whether it was.
// Only drains count as the caller draining (drainedBig): a release of a
// body never drained (its batch was freed, its read failed) is not one.
func releaseBig(p unsafe.Pointer) bool {
	bigBuffers.Lock()
	l, ok := bigBuffers.live[uintptr(p)]
	if !ok {
		bigBuffers.Unlock()
		return false
	}
	size := l.size
	delete(bigBuffers.live, uintptr(p))
	b := unsafe.Slice((*byte)(p), size)
	keep := bigBuffers.kept+size <= bigPoolMax
	if keep {
		bigBuffers.free[size] = append(bigBuffers.free[size], b)
		bigBuffers.kept += size
		bigBuffers.pooled++
	}
	if !l.drained {
		bigBuffers.liveBytes -= size
		wakeBigLocked()
	}
	bigBuffers.Unlock()
	if !keep {
		unix.Munmap(b)
	}
	liveBuffers.Add(-1)
	return true
}

// handBig marks p, if it is a big buffer, as handed to C, when hand is
// set; it reports whether p is a big buffer.
func handBig(p unsafe.Pointer, hand bool) bool {
	bigBuffers.Lock()
	defer bigBuffers.Unlock()
	l, ok := bigBuffers.live[uintptr(p)]
	if ok && hand {
		l.handed = true
		bigBuffers.live[uintptr(p)] = l
	}
	return ok
}

// dropBigPool unmaps the released big buffers kept for reuse.
func dropBigPool() {
	bigBuffers.Lock()
	free := bigBuffers.free
	bigBuffers.free, bigBuffers.kept, bigBuffers.pooled = map[int][][]byte{}, 0, 0
	bigBuffers.Unlock()
	for _, l := range free {
		for _, b := range l {
			unix.Munmap(b)
		}
	}
}

// bodyAllocator gives the engine big buffers to read bodies into.
type bodyAllocator struct{}

func (bodyAllocator) Alloc(ctx context.Context, n int) []byte {
	if n < bigBuffer {
		return nil // a page-sized mapping per small body would waste more than the copy costs
	}
	return mapBig(n, ctx.Done()) // nil (no memory to map): the engine reads into Go memory
}

func (bodyAllocator) Free(b []byte) { releaseBig(unsafe.Pointer(unsafe.SliceData(b))) }

// Grow remaps a big buffer to n bytes: the kernel moves its pages rather
// than copying them, and pages never written take no memory, so a growing
// body costs what it holds.
func (bodyAllocator) Grow(b []byte, n int) []byte {
	b = b[:cap(b)] // the whole mapping
	old := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	size := bigSize(n)
	bigBuffers.Lock()
	defer bigBuffers.Unlock()
	l, ok := bigBuffers.live[old]
	have := l.size
	if !ok || l.handed || have != len(b) {
		return nil
	}
	if size <= have {
		return b[:n]
	}
	grown, err := unix.Mremap(b, size, unix.MREMAP_MAYMOVE)
	if err != nil {
		return nil
	}
	delete(bigBuffers.live, old)
	bigBuffers.live[uintptr(unsafe.Pointer(unsafe.SliceData(grown)))] = bigLive{size: size}
	bigBuffers.liveBytes += size - have
	return grown[:n]
}

// releaseBody frees a result body nobody will read: a big buffer goes
// back; Go memory is the collector's.
func releaseBody(b []byte) {
	if cap(b) >= bigBuffer {
		releaseBig(unsafe.Pointer(unsafe.SliceData(b)))
	}
}

// cBody hands a result body to C: a big buffer from bodyAllocator as it
// is when it holds a big body, anything else copied (a big buffer is only
// freed as one when its length says it is big: see cFree).
func cBody(b []byte) *C.uint8_t {
	buf := unsafe.Pointer(unsafe.SliceData(b))
	if cap(b) < bigBuffer || !handBig(buf, len(b) >= bigBuffer) {
		return cBytes(b)
	}
	if len(b) >= bigBuffer {
		return (*C.uint8_t)(buf)
	}
	p := cBytes(b)
	releaseBig(buf)
	return p
}
