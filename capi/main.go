// Command capi is built with -buildmode=c-shared into libfastreq.so: the C
// interface of the fastreq engine. It holds no logic of its own; each
// export decodes its JSON, calls core, and encodes the answer through the
// shared helpers of boundary.go. include/fastreq.h is the contract.
package main

import (
	"io"
	"log"
)

func init() {
	// The host process owns stdout and stderr: nothing in the library
	// (net/http logs a few oddities through the log package) may write there.
	log.SetOutput(io.Discard)
}

func main() {}
