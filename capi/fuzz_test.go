//go:build fastreqtest

package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fastreq/fastreq/core"
)

// The fuzz targets feed arbitrary bytes to the JSON decoding paths of
// fastreq_client_new and fastreq_batch_submit, through the real exports
// (testhooks.go). Whatever the input, the call must answer OK or EINVAL
// with a well-formed error object - never EINTERNAL, which is what a
// recovered panic becomes - and must not leak a handle or a C buffer.
//
// Seed corpora: testdata/fuzz/FuzzClientConfig and
// testdata/fuzz/FuzzRequestConfig (run by plain `go test`). A short
// coverage-guided run: `make test-fuzz`.

const (
	rcOK        = 0
	rcEINVAL    = -1
	rcBadHandle = -2
	rcClosed    = -3
)

// checkErrObject asserts that errJSON is the error object fastreq.h
// promises for EINVAL: {"kind", "field"?, "message"}.
func checkErrObject(t *testing.T, errJSON string) {
	t.Helper()
	var e struct {
		Kind    string  `json:"kind"`
		Field   *string `json:"field"`
		Message string  `json:"message"`
	}
	if err := json.Unmarshal([]byte(errJSON), &e); err != nil {
		t.Fatalf("error object %q is not JSON: %v", errJSON, err)
	}
	if e.Kind != string(core.KindValidation) && e.Kind != string(core.KindConfiguration) {
		t.Fatalf("error kind %q, want validation or configuration: %s", e.Kind, errJSON)
	}
	if e.Message == "" {
		t.Fatalf("error without a message: %s", errJSON)
	}
}

// noLeaks asserts that a fuzz call left handles and C buffers as it found them.
func noLeaks(t *testing.T, handles0 int, buffers0 int64) {
	t.Helper()
	if n := handles.len(); n != handles0 {
		t.Fatalf("%d handles live after the call, %d before", n, handles0)
	}
	if n := liveBuffers.Load(); n != buffers0 {
		t.Fatalf("%d C buffers live after the call, %d before", n, buffers0)
	}
}

// readsOtherFiles reports whether a client config names a file to read
// (webshare_file, ca_file) outside testdata/: the fuzzer must not make the
// test read (or block on) arbitrary files of the machine, like /dev/zero
// or /proc/kmsg.
func readsOtherFiles(data []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return false // not an object: the library will reject it
	}
	for k, v := range m {
		if !strings.EqualFold(k, "webshare_file") && !strings.EqualFold(k, "ca_file") {
			continue
		}
		var path string
		if json.Unmarshal(v, &path) == nil && (path == "" || strings.HasPrefix(path, "testdata/")) && !strings.Contains(path, "..") {
			continue
		}
		return true
	}
	return false
}

func FuzzClientConfig(f *testing.F) {
	f.Add([]byte(`{"concurrency":4}`))
	f.Fuzz(checkClientConfig)
}

// checkClientConfig is FuzzClientConfig's property for one input.
func checkClientConfig(t *testing.T, data []byte) {
	t.Helper()
	if readsOtherFiles(data) {
		t.Skip("names a file outside testdata/ to read")
	}
	handles0, buffers0 := handles.len(), liveBuffers.Load()
	h, rc, errJSON := hookClientNew(data)
	switch rc {
	case rcOK:
		if errJSON != "" {
			t.Fatalf("OK with an error object: %s", errJSON)
		}
		if h == 0 {
			t.Fatal("OK with handle 0")
		}
		if rc := hookClientClose(h); rc != rcOK {
			t.Fatalf("fastreq_client_close = %d", rc)
		}
	case rcEINVAL:
		checkErrObject(t, errJSON)
	default:
		t.Fatalf("fastreq_client_new = %d, want OK or EINVAL: %s", rc, errJSON)
	}
	noLeaks(t, handles0, buffers0)

	// The export agrees with decoding and building the client directly.
	cfg := core.DefaultClientConfig()
	var err error
	if len(data) > 0 {
		err = decodeStrict("client config", data, &cfg)
	}
	if err == nil {
		var c *core.Client
		if c, err = core.NewClient(cfg); err == nil {
			c.Close()
		}
	}
	if (err == nil) != (rc == rcOK) {
		t.Fatalf("export answered %d but direct decode+NewClient gave %v", rc, err)
	}

}

func FuzzRequestConfig(f *testing.F) {
	f.Add([]byte(`[{"url":"http://127.0.0.1:1/"}]`))
	f.Fuzz(checkRequestConfig)
}

// checkRequestConfig is FuzzRequestConfig's property for one input.
func checkRequestConfig(t *testing.T, data []byte) {
	t.Helper()
	handles0, buffers0 := handles.len(), liveBuffers.Load()
	// No network: the hook submits to a closed client, which validates
	// every request and then refuses to start (FASTREQ_ECLOSED).
	rcStrict, errStrict := hookValidateRequests(data, 1) // FASTREQ_SUBMIT_STRICT
	rcLoose, errLoose := hookValidateRequests(data, 0)
	for _, r := range []struct {
		rc     int32
		errObj string
		strict bool
	}{{rcStrict, errStrict, true}, {rcLoose, errLoose, false}} {
		switch r.rc {
		case rcClosed:
		case rcEINVAL:
			if r.strict { // without STRICT the batch's wait answers, with no JSON
				checkErrObject(t, r.errObj)
			}
		default:
			t.Fatalf("fastreq_batch_submit = %d, want EINVAL or ECLOSED: %s", r.rc, r.errObj)
		}
	}
	noLeaks(t, handles0, buffers0)

	// Without STRICT only undecodable JSON fails, exactly when decoding
	// fails; STRICT fails on that too, and on any invalid request.
	var decodeErr error
	for _, err := range decodeRequests(data) {
		decodeErr = err
	}
	if (decodeErr == nil) != (rcLoose == rcClosed) {
		t.Fatalf("submit without STRICT answered %d (%s), but decoding gave %v", rcLoose, errLoose, decodeErr)
	}
	if rcLoose == rcEINVAL && rcStrict != rcEINVAL {
		t.Fatalf("undecodable input: STRICT answered %d (%s), without STRICT %d (%s)", rcStrict, errStrict, rcLoose, errLoose)
	}
	if rcStrict == rcEINVAL && rcLoose == rcClosed && !strings.Contains(errStrict, "request ") {
		t.Fatalf("STRICT validation error does not name the request's index: %s", errStrict)
	}

}

// TestDeepNesting runs the fuzz properties on nesting far deeper than the
// seed corpus holds (large seeds make the fuzzer spend its time minimizing
// them): past the JSON decoder's depth limit of 10000 it must answer
// EINVAL, not overflow a stack - a Go stack overflow is fatal, no recover
// can catch it.
func TestDeepNesting(t *testing.T) {
	for _, depth := range []int{9999, 10001, 200000} {
		arrays := strings.Repeat("[", depth) + strings.Repeat("]", depth)
		objects := strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
		for _, nested := range []string{arrays, objects} {
			checkClientConfig(t, []byte(`{"headers":`+nested+`}`))
			checkClientConfig(t, []byte(`{"nope":`+nested+`}`))
			checkRequestConfig(t, []byte(nested))
			for _, field := range []string{"json", "params", "data", "headers"} {
				checkRequestConfig(t, []byte(`[{"url":"http://127.0.0.1:1/","`+field+`":`+nested+`}]`))
			}
		}
	}
}

// TestDecodeRequests: the element-by-element decoding keeps the whole-
// array rules: null is no requests, anything but an array is refused, as
// is data after it, and a bad element names its field.
func TestDecodeRequests(t *testing.T) {
	tests := []struct {
		in    string
		n     int
		field string // "" when it decodes
	}{
		{`[]`, 0, ""},
		{` null `, 0, ""},
		{`[{"url":"http://a/"},{"url":"http://b/","id":"x"}]`, 2, ""},
		{`[null]`, 1, ""},
		{`{"url":"http://a/"}`, 0, "requests"},
		{`"http://a/"`, 0, "requests"},
		{`[{"url":"http://a/"}] []`, 1, "requests"},
		{`[{"url":"http://a/"}`, 1, "requests"},
		{`[{"url":"http://a/"},]`, 1, "requests"},
		{`[{"url":"http://a/","nope":1}]`, 0, "nope"},
		{`[{"url":"http://a/"},{"timeout":"5"}]`, 1, "timeout"},
		{``, 0, "requests"},
	}
	for _, tt := range tests {
		var urls []string
		var err error
		n := 0
		for cfg, e := range decodeRequests([]byte(tt.in)) {
			if e != nil {
				err = e
				break
			}
			n++
			urls = append(urls, cfg.URL)
		}
		if n != tt.n || len(urls) != tt.n {
			t.Errorf("%s: %d requests (%v), want %d", tt.in, n, urls, tt.n)
		}
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.in, err)
			}
			continue
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.err.Field != tt.field {
			t.Errorf("%s: error %v, want one on field %q", tt.in, err, tt.field)
		}
	}
}
