package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include <stdint.h>
#include "fastreq.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"math"
	"runtime/debug"
	"strings"

	"github.com/fastreq/fastreq/core"
	json "github.com/goccy/go-json"
)

// apiError is an error with the return code it maps to.
type apiError struct {
	code int32
	err  *core.Error
}

func (e *apiError) Error() string { return e.err.Message }

func errBadHandle(format string, args ...any) error {
	return &apiError{C.FASTREQ_EBADHANDLE, &core.Error{Kind: "bad_handle", Message: fmt.Sprintf(format, args...)}}
}

func errInvalid(field, format string, args ...any) error {
	return &apiError{C.FASTREQ_EINVAL, &core.Error{Kind: core.KindValidation, Field: field, Message: fmt.Sprintf(format, args...)}}
}

// codeOf maps any error to its return code and JSON-encodable form.
func codeOf(err error) (int32, *core.Error) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.code, ae.err
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		switch ce.Kind {
		case core.KindCancelled:
			return C.FASTREQ_ECLOSED, ce
		case core.KindValidation, core.KindConfiguration:
			return C.FASTREQ_EINVAL, ce
		}
		return C.FASTREQ_EINTERNAL, ce
	}
	return C.FASTREQ_EINTERNAL, &core.Error{Kind: "internal", Message: err.Error()}
}

// call is the shape of every export: run fn with a recover, turn an error
// into a return code and (when errOut is not NULL) a JSON error object the
// caller frees. A Go panic never crosses into C.
func call(errOut **C.char, fn func() error) (rc C.int32_t) {
	if errOut != nil {
		*errOut = nil
	}
	defer func() {
		if r := recover(); r != nil {
			rc = C.FASTREQ_EINTERNAL
			setErr(errOut, &core.Error{Kind: "internal", Message: fmt.Sprintf("internal error: %v\n%s", r, debug.Stack())})
		}
	}()
	if err := fn(); err != nil {
		code, ce := codeOf(err)
		setErr(errOut, ce)
		return C.int32_t(code)
	}
	return C.FASTREQ_OK
}

// callCount is call for the exports that return a count (>= 0) or a
// negative code.
func callCount(fn func() (int, error)) C.int32_t {
	n := 0
	rc := call(nil, func() (err error) {
		n, err = fn()
		return err
	})
	if rc != C.FASTREQ_OK {
		return rc
	}
	return C.int32_t(min(n, math.MaxInt32))
}

func setErr(errOut **C.char, e *core.Error) {
	if errOut == nil {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		b = []byte(`{"kind":"internal","message":"unencodable error"}`)
	}
	*errOut = cString(b)
}

// decodeStrict decodes JSON into v, rejecting unknown fields, trailing
// data, and type mismatches with a message that names the field.
func decodeStrict(what string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(what, err)
	}
	if dec.More() {
		return errInvalid(what, "%s: unexpected data after the JSON value", what)
	}
	return nil
}

// decodeRequests decodes a JSON array of requests element by element, as
// strictly as decodeStrict, into one reused RequestConfig: core.SubmitSeq
// keeps only what each request needs, so a batch of 100k URLs never
// holds 100k RequestConfigs at once. A bad element ends the sequence
// with its error, and the submit fails.
func decodeRequests(data []byte) iter.Seq2[*core.RequestConfig, error] {
	return func(yield func(*core.RequestConfig, error) bool) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		tok, err := dec.Token()
		if err != nil {
			yield(nil, jsonError("requests", err))
			return
		}
		if d, ok := tok.(json.Delim); ok && d == '[' {
			var cfg core.RequestConfig
			for dec.More() {
				cfg = core.RequestConfig{} // the batch keeps the maps and slices of the last one
				if err := dec.Decode(&cfg); err != nil {
					yield(nil, jsonError("requests", err))
					return
				}
				if !yield(&cfg, nil) {
					return
				}
			}
			if _, err := dec.Token(); err != nil { // the closing ]
				yield(nil, jsonError("requests", err))
				return
			}
		} else if tok != nil { // null is no requests, as it is for decodeStrict
			yield(nil, errInvalid("requests", "requests: want a JSON array of requests, not %v", tok))
			return
		}
		if dec.More() {
			yield(nil, errInvalid("requests", "requests: unexpected data after the JSON value"))
		}
	}
}

func jsonError(what string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			field = field[i+1:]
		}
		return errInvalid(field, "%s: field %q: cannot use a JSON %s as %s", what, field, te.Value, te.Type)
	}
	msg := err.Error()
	field := what
	if i := strings.Index(msg, "unknown field \""); i >= 0 {
		rest := msg[i+len("unknown field \""):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			field = rest[:j]
			return errInvalid(field, "%s: unknown field %q", what, field)
		}
	}
	return errInvalid(field, "%s: invalid JSON: %s", what, strings.TrimPrefix(msg, "json: "))
}

// errorCodes maps error kinds to the FASTREQ_ERR_* numbers of the header.
var errorCodes = map[core.ErrorKind]C.int32_t{
	core.KindValidation:       C.FASTREQ_ERR_VALIDATION,
	core.KindConfiguration:    C.FASTREQ_ERR_CONFIGURATION,
	core.KindTimeout:          C.FASTREQ_ERR_TIMEOUT,
	core.KindConnect:          C.FASTREQ_ERR_CONNECT,
	core.KindTLS:              C.FASTREQ_ERR_TLS,
	core.KindProxy:            C.FASTREQ_ERR_PROXY,
	core.KindTooManyRedirects: C.FASTREQ_ERR_TOO_MANY_REDIRECTS,
	core.KindBodyTooLarge:     C.FASTREQ_ERR_BODY_TOO_LARGE,
	core.KindCancelled:        C.FASTREQ_ERR_CANCELLED,
	core.KindRetriesExhausted: C.FASTREQ_ERR_RETRIES_EXHAUSTED,
	core.KindTransport:        C.FASTREQ_ERR_TRANSPORT,
	core.KindHTTPStatus:       C.FASTREQ_ERR_HTTP_STATUS,
	core.KindIO:               C.FASTREQ_ERR_IO,
}

func errorCode(e *core.Error) C.int32_t {
	if e == nil {
		return C.FASTREQ_ERR_NONE
	}
	if c, ok := errorCodes[e.Kind]; ok {
		return c
	}
	return C.FASTREQ_ERR_INTERNAL
}
