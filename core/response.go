package core

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// NormalizedResponse is the outcome of one request. JSON names are those of
// the Python API, plus what the engine adds. A failed request has Error set
// (and StatusCode 0 unless retries ran out on a retryable status, in which
// case the last response is kept too).
type NormalizedResponse struct {
	// Index is the request's position in its batch.
	Index int `json:"index"`
	// ID echoes RequestConfig.ID.
	ID string `json:"id,omitempty"`
	// StatusCode is the HTTP status of the final response.
	StatusCode int `json:"status_code"`
	// Headers has lower-case names; repeated headers are joined with ", "
	// (Set-Cookie, which cannot be joined that way, with "\n").
	Headers map[string]string `json:"headers"`
	// URL is the final URL after redirects.
	URL string `json:"url"`
	// HTTPVersion is "HTTP/1.1" or "HTTP/2.0".
	HTTPVersion string `json:"http_version,omitempty"`
	// Content is the body, decoded (gzip, deflate, br, zstd). Empty for streaming and
	// file downloads. It is not part of the JSON form: across the C ABI
	// the body travels beside the JSON.
	Content []byte `json:"-"`
	// ContentLength is the number of body bytes kept, streamed or written.
	ContentLength int64 `json:"content_length"`
	// Path is where the body was written, for OutputPath requests.
	Path string `json:"path,omitempty"`
	// Elapsed is the time from the request's first attempt to its end,
	// backoff included.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Attempts is how many attempts were made.
	Attempts int `json:"attempts"`
	// Timings is where the last attempt's time went: DNS, connect, TLS,
	// time to first byte, total, and whether its connection was reused.
	// Zero when no attempt was made.
	Timings Timings `json:"timings"`
	// Error is set when the request failed.
	Error *Error `json:"error,omitempty"`
}

// Err returns Error as an error interface (nil when the request succeeded).
func (r *NormalizedResponse) Err() error {
	if r.Error == nil {
		return nil
	}
	return r.Error
}

// normalizeHeaders lower-cases names and joins repeated values.
func normalizeHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, vs := range h {
		name := lowerName(k)
		switch {
		case len(vs) == 1:
			out[name] = vs[0]
		case name == "set-cookie":
			out[name] = strings.Join(vs, "\n")
		default:
			out[name] = strings.Join(vs, ", ")
		}
	}
	return out
}

// lowerNames maps common header names, in the canonical form net/http
// gives response headers, to their lower-case form, so that normalizing
// them allocates no string. Never written after init.
var lowerNames = func() map[string]string {
	names := []string{
		"accept-ranges", "access-control-allow-credentials", "access-control-allow-headers",
		"access-control-allow-methods", "access-control-allow-origin", "access-control-expose-headers",
		"access-control-max-age", "age", "alt-svc", "cache-control", "cf-cache-status", "cf-ray",
		"connection", "content-disposition", "content-encoding", "content-language", "content-length",
		"content-location", "content-range", "content-security-policy", "content-type",
		"cross-origin-embedder-policy", "cross-origin-opener-policy", "cross-origin-resource-policy",
		"date", "etag", "expires", "keep-alive", "last-modified", "link", "location", "nel", "p3p",
		"permissions-policy", "pragma", "proxy-authenticate", "referrer-policy", "report-to",
		"retry-after", "server", "server-timing", "set-cookie", "strict-transport-security", "timing-allow-origin",
		"trailer", "transfer-encoding", "upgrade", "vary", "via", "www-authenticate", "x-cache",
		"x-content-type-options", "x-frame-options", "x-powered-by", "x-request-id", "x-xss-protection",
	}
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[http.CanonicalHeaderKey(n)] = n
	}
	return m
}()

// lowerName is strings.ToLower(name), without allocating for the common
// names.
func lowerName(name string) string {
	if l, ok := lowerNames[name]; ok {
		return l
	}
	return strings.ToLower(name)
}

// zstdMaxWindow is the largest zstd window a body may ask for: RFC 9659
// limits the "zstd" content coding to 8 MiB, so a frame asking for more
// is refused instead of sizing a buffer the server picked.
const zstdMaxWindow = 8 << 20

// decodedBody wraps the body in a decoder as the Content-Encoding says
// (gzip, deflate, br, zstd); other encodings are passed through untouched.
func decodedBody(resp *http.Response) (io.Reader, func(), error) {
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	switch enc {
	case "br":
		return brotli.NewReader(resp.Body), func() {}, nil
	case "zstd":
		// One goroutine-free decoder per body: the engine already runs a
		// body per request in parallel.
		zr, err := zstd.NewReader(resp.Body, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd body: %w", err)
		}
		return zr, zr.Close, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			if errors.Is(err, io.EOF) { // empty body
				return strings.NewReader(""), func() {}, nil
			}
			return nil, nil, fmt.Errorf("gzip body: %w", err)
		}
		return zr, func() { zr.Close() }, nil
	case "deflate":
		// "deflate" should be zlib-wrapped, but some servers send raw
		// deflate: peek at the header to tell them apart.
		br := bufio.NewReader(resp.Body)
		hdr, _ := br.Peek(2)
		if len(hdr) == 2 && hdr[0]&0x0f == 8 && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, nil, fmt.Errorf("deflate body: %w", err)
			}
			return zr, func() { zr.Close() }, nil
		}
		if len(hdr) == 0 {
			return strings.NewReader(""), func() {}, nil
		}
		fr := flate.NewReader(br)
		return fr, func() { fr.Close() }, nil
	}
	return resp.Body, func() {}, nil
}

// readBody reads the whole (decoded) body, failing with bodyTooLargeError
// past limit. A known Content-Length on an unencoded body sizes the buffer
// exactly, so the common case allocates once, from alloc when it is set.
func readBody(ctx context.Context, resp *http.Response, limit int64, alloc BodyAllocator) ([]byte, error) {
	if resp.Body == http.NoBody { // HEAD, 204, 304: Content-Length describes nothing sent
		return nil, nil
	}
	r, done, err := decodedBody(resp)
	if err != nil {
		return nil, err
	}
	defer done()
	n := resp.ContentLength
	if r == resp.Body && n >= 0 {
		if n > limit {
			return nil, bodyTooLargeError{limit}
		}
		return readExact(ctx, r, int(n), alloc)
	}
	return readGrowing(ctx, r, n, limit, alloc)
}

// readGrowing reads a body of unknown decoded length, failing past limit.
// The buffer doubles, never beyond limit+1 bytes; once it outgrows the Go
// heap's small sizes it moves to alloc, which grows it in place (pages
// remapped, not copied), so a body at the limit costs about its own size
// and a compression bomb stops at the limit. Without alloc the peak is the
// last two buffers.
func readGrowing(ctx context.Context, r io.Reader, hint, limit int64, alloc BodyAllocator) ([]byte, error) {
	size := int64(512)
	if hint > 0 && hint < limit {
		size = hint * 2
	}
	buf := make([]byte, 0, min(size, limit+1))
	owned := false // buf came from alloc
	fail := func(err error) ([]byte, error) {
		if owned {
			alloc.Free(buf[:cap(buf)])
		}
		return nil, err
	}
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return fail(bodyTooLargeError{limit})
			}
			want := int(min(2*int64(cap(buf)), limit+1))
			var grown []byte
			switch {
			case owned:
				if grown = alloc.Grow(buf[:cap(buf)], want); grown == nil {
					return fail(errors.New("out of memory for the response body"))
				}
			case alloc != nil:
				// Alloc for the bytes at hand (it is asked for bytes about
				// to be written), then Grow for the room to read into.
				if moved := alloc.Alloc(ctx, len(buf)); moved != nil {
					copy(moved, buf)
					if grown = alloc.Grow(moved, want); grown != nil {
						owned = true
					} else {
						alloc.Free(moved) // no room to grow: on in Go memory
					}
				}
			}
			if grown == nil {
				grown = make([]byte, want)
				copy(grown, buf)
			}
			buf = grown[:len(buf)]
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if int64(len(buf)) > limit {
			return fail(bodyTooLargeError{limit})
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return fail(err)
		}
	}
}

// readExact reads exactly n bytes into a buffer from alloc, or from the Go
// heap when alloc is nil or declines.
func readExact(ctx context.Context, r io.Reader, n int, alloc BodyAllocator) ([]byte, error) {
	var buf []byte
	if alloc != nil && n > 0 {
		if buf = alloc.Alloc(ctx, n); buf != nil && len(buf) != n {
			alloc.Free(buf) // a wrong size: not worth failing the request over
			buf = nil
		}
	}
	owned := buf != nil
	if !owned {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if owned {
			alloc.Free(buf)
		}
		return nil, err
	}
	return buf, nil
}

// streamBody hands the decoded body to sink in chunks as they arrive.
// It returns the bytes delivered; sent tells the caller whether any chunk
// went out (after which a retry would duplicate data).
func streamBody(resp *http.Response, sink func([]byte) error, sent *bool) (int64, error) {
	r, done, err := decodedBody(resp)
	if err != nil {
		return 0, err
	}
	defer done()
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			*sent = true
			total += int64(n)
			if serr := sink(buf[:n]); serr != nil {
				return total, &Error{Kind: KindIO, Message: "io: stream callback failed: " + serr.Error(), cause: serr}
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// saveBody writes the decoded body to path through a temporary file in the
// same directory, renamed into place only when the whole body arrived.
func saveBody(resp *http.Response, path string) (int64, error) {
	r, done, err := decodedBody(resp)
	if err != nil {
		return 0, err
	}
	defer done()
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".part-*")
	if err != nil {
		return 0, &Error{Kind: KindIO, Field: "output_path", Message: "io: cannot create " + path + ": " + err.Error(), cause: err}
	}
	n, err := io.Copy(f, r)
	cerr := f.Close()
	if err == nil && cerr != nil {
		err = &Error{Kind: KindIO, Field: "output_path", Message: "io: writing " + path + ": " + cerr.Error(), cause: cerr}
	}
	if err == nil {
		if rerr := os.Rename(f.Name(), path); rerr != nil {
			err = &Error{Kind: KindIO, Field: "output_path", Message: "io: " + rerr.Error(), cause: rerr}
		}
	}
	if err != nil {
		os.Remove(f.Name())
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Path == f.Name() {
			err = &Error{Kind: KindIO, Field: "output_path", Message: "io: writing " + path + ": " + pe.Err.Error(), cause: err}
		}
		return n, err
	}
	return n, nil
}

// discardBody reads and drops a bounded amount of a body we will not use,
// so the connection can be reused, then closes it.
func discardBody(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}
