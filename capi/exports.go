package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include <stdint.h>
#include <stdlib.h>
#include "queue.h"
*/
import "C"

import (
	"runtime/debug"
	"sync"
	"unsafe"

	"github.com/fastreq/fastreq/core"
)

var versionString = C.CString(core.Version) // static for the process's life

const submitFlags = C.FASTREQ_SUBMIT_STRICT | C.FASTREQ_SUBMIT_META_ON_FAILURE

//export fastreq_version
func fastreq_version() *C.char { return versionString }

//export fastreq_abi_version
func fastreq_abi_version() C.int32_t { return C.FASTREQ_ABI_VERSION }

//export fastreq_free
func fastreq_free(p unsafe.Pointer) {
	defer func() { recover() }()
	cFree(p, -1)
}

//export fastreq_live_buffers
func fastreq_live_buffers() C.int64_t { return C.int64_t(liveBuffers.Load()) }

//export fastreq_live_handles
func fastreq_live_handles() C.int64_t { return C.int64_t(handles.len()) + C.fq_live_batches() }

//export fastreq_set_memory_limit
func fastreq_set_memory_limit(limit C.int64_t) (prev C.int64_t) {
	defer func() { recover() }()
	return C.int64_t(debug.SetMemoryLimit(int64(limit)))
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
		*out = C.uint64_t(handles.add(c, kindClient))
		return nil
	})
}

//export fastreq_client_close
func fastreq_client_close(h C.uint64_t) C.int32_t {
	return call(nil, func() error {
		c, err := lookupAs[*core.Client](uint64(h))
		if err != nil {
			if handles.wasClosed(uint64(h), kindClient) {
				return nil // already closed: closing again is a no-op
			}
			return err // never a client (a freed batch is not a closed client)
		}
		handles.remove(uint64(h))
		return c.Close() // the last records are pushed before it returns
	})
}

//export fastreq_client_set_cookies
func fastreq_client_set_cookies(h C.uint64_t, cookiesJSON *C.char, n C.size_t, errOut **C.char) C.int32_t {
	return call(errOut, func() error {
		c, err := lookupAs[*core.Client](uint64(h))
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
		c, err := lookupAs[*core.Client](uint64(h))
		if err != nil {
			return err
		}
		c.ResetCookies()
		return nil
	})
}

//export fastreq_requests_check
func fastreq_requests_check(reqJSON *C.char, n C.size_t, errOut **C.char) C.int32_t {
	return call(errOut, func() error {
		return checker().Check(decodeRequests(goBytes(reqJSON, n)))
	})
}

// checker is a client with the default settings that checks requests
// (Client.Check); closed before its first use, it holds nothing.
var checker = sync.OnceValue(func() *core.Client {
	c, err := core.NewClient(core.DefaultClientConfig())
	if err != nil {
		panic(err) // the defaults are valid
	}
	c.Close()
	return c
})
