//go:build fastreqtest

package main

// Go-typed entry points to the bench server exports for benchserver_test.go
// (cgo is not allowed in _test.go files; see testhooks.go). Each calls the
// export through its C symbol, as a C or ctypes caller does.

/*
#include <stdint.h>
#include <stdlib.h>
#undef FASTREQ_TYPES_ONLY
#include "fastreq.h"
*/
import "C"

func hookBenchServerStart(bodyLen int64, nullOut bool) (h uint64, url string, rc int32, errJSON string) {
	var out C.uint64_t
	var urlp, errp *C.char
	if nullOut {
		rc = int32(C.fastreq_bench_server_start(C.int64_t(bodyLen), nil, &urlp, &errp))
	} else {
		rc = int32(C.fastreq_bench_server_start(C.int64_t(bodyLen), &out, &urlp, &errp))
	}
	return uint64(out), takeError(urlp), rc, takeError(errp)
}

func hookBenchServerStop(h uint64) int32 { return int32(C.fastreq_bench_server_stop(C.uint64_t(h))) }
