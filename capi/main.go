// Command capi is built with -buildmode=c-shared into libfastreq.so: the C
// interface of the fastreq engine. It holds no logic of its own; each
// export decodes its JSON, calls core, and encodes the answer through the
// shared helpers of boundary.go. include/fastreq.h is the contract.
package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include "queue.h"
*/
import "C"

import (
	"io"
	"log"
	"os"
	"runtime/debug"
)

// gcPercent is the library's GOGC unless the environment sets one. Its
// heap holds little that lives (bodies go to C memory, results to the
// host), so at Go's default of 100 it collects every few MB of
// per-request garbage; the figures behind 200 are in tests/bench/README.md.
const gcPercent = 200

func init() {
	// The host process owns stdout and stderr: nothing in the library
	// (net/http logs a few oddities through the log package) may write there.
	log.SetOutput(io.Discard)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	// The Go runtime raised the process's descriptor limit as it started;
	// the host's limit is the host's (nofile.c).
	C.fq_restore_nofile()
}

func main() {}
