package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include <stdint.h>
#include "fastreq.h"
*/
import "C"

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/fastreq/fastreq/core"
)

// A bench server is a loopback HTTP server for `fastreq bench`: it
// answers every path and method with the same body, over HTTP/1.1 and
// h2c (prior knowledge), on 127.0.0.1 only. It starts only when asked and
// ends with fastreq_bench_server_stop or with the process.

// maxBenchBody bounds body_len: the body is held once, in Go memory.
const maxBenchBody = 64 << 20

// kindBenchServer: a server handle is not a client, so that
// fastreq_client_close of a stopped server is not taken for a closed client.
const kindBenchServer = kindBatch

type benchServer struct {
	srv  *http.Server
	done chan struct{} // closed when Serve has returned
}

// benchBody is n bytes of JSON ({"pad":"xxx..."}) when n allows it, so a
// client that parses JSON bodies does its usual work; else n bytes of 'x'.
func benchBody(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	if n >= len(`{"pad":""}`) {
		copy(b, `{"pad":"`)
		copy(b[n-2:], `"}`)
	}
	return b
}

func newBenchServer(bodyLen int) (*benchServer, string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return nil, "", &apiError{C.FASTREQ_ESYS, &core.Error{Kind: "system", Message: "bench server: " + err.Error()}}
	}
	body := benchBody(bodyLen)
	clen := strconv.Itoa(len(body))
	ctype := "application/octet-stream"
	if len(body) > 0 && body[0] == '{' {
		ctype = "application/json"
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{ctype}
		h["Content-Length"] = []string{clen}
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s := &benchServer{
		srv: &http.Server{
			Handler:           handler,
			Protocols:         protocols,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       120 * time.Second,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		defer func() { recover() }() // a panic here must not kill the host
		s.srv.Serve(ln)
	}()
	return s, "http://" + ln.Addr().String(), nil
}

// stop closes the listener and every connection, and waits for Serve to
// return.
func (s *benchServer) stop() error {
	err := s.srv.Close()
	<-s.done
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

//export fastreq_bench_server_start
func fastreq_bench_server_start(bodyLen C.int64_t, out *C.uint64_t, urlOut **C.char, errOut **C.char) C.int32_t {
	if urlOut != nil {
		*urlOut = nil
	}
	return call(errOut, func() error {
		if out == nil || urlOut == nil {
			return errInvalid("server_out", "server_out or url_out is NULL")
		}
		if bodyLen < 0 || bodyLen > maxBenchBody {
			return errInvalid("body_len", "body_len must be between 0 and %d, got %d", maxBenchBody, int64(bodyLen))
		}
		s, url, err := newBenchServer(int(bodyLen))
		if err != nil {
			return err
		}
		*out = C.uint64_t(handles.add(s, kindBenchServer))
		*urlOut = cString([]byte(url))
		return nil
	})
}

//export fastreq_bench_server_stop
func fastreq_bench_server_stop(h C.uint64_t) C.int32_t {
	return call(nil, func() error {
		s, err := lookupAs[*benchServer](uint64(h))
		if err != nil {
			return err
		}
		if !handles.remove(uint64(h)) {
			return errBadHandle("handle %d is closed", uint64(h))
		}
		return s.stop()
	})
}
