// Command capi is built with -buildmode=c-shared into libfastreq.so: the C
// interface of the fastreq engine. It holds no logic of its own; each
// export decodes its JSON, calls core, and encodes the answer through the
// shared helpers of boundary.go. include/fastreq.h is the contract.
package main

import (
	"io"
	"log"
	"os"
	"runtime"
)

func init() {
	// The host process owns stdout and stderr: nothing in the library
	// (net/http logs a few oddities through the log package) may write there.
	log.SetOutput(io.Discard)

	// A host thread returning from a call into the library keeps its Go
	// scheduler slot until the runtime's monitor takes it back (up to
	// ~10 ms). With a single slot (a process limited to one CPU) the engine
	// would stall whenever the host works between calls, so keep at least
	// two; the OS still shares the one CPU between them. GOMAXPROCS in the
	// environment wins.
	if os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
}

func main() {}
