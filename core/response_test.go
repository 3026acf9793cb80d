package core

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastreq/fastreq/tests/testserver"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

func TestNormalizeHeaders(t *testing.T) {
	h := http.Header{
		"Content-Type": {"text/plain"},
		"X-Multi":      {"one", "two"},
		"Set-Cookie":   {"a=1; Path=/", "b=2, with comma"},
		"X-Empty":      {""},
	}
	want := map[string]string{
		"content-type": "text/plain",
		"x-multi":      "one, two",
		"set-cookie":   "a=1; Path=/\nb=2, with comma",
		"x-empty":      "",
	}
	if got := normalizeHeaders(h); !reflect.DeepEqual(got, want) {
		t.Errorf("normalizeHeaders = %q, want %q", got, want)
	}
}

func compress(t *testing.T, kind string, data []byte) []byte {
	var buf bytes.Buffer
	var w io.WriteCloser
	switch kind {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zlib":
		w = zlib.NewWriter(&buf)
	case "raw":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		w, _ = zstd.NewWriter(&buf)
	}
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

func TestReadBodyDecodings(t *testing.T) {
	plain := []byte(strings.Repeat("fastreq decodes bodies. ", 100))
	tests := []struct {
		name, encoding string
		body           []byte
		want           []byte
	}{
		{"identity", "", plain, plain},
		{"gzip", "gzip", compress(t, "gzip", plain), plain},
		{"x-gzip upper case", " X-GZIP ", compress(t, "gzip", plain), plain},
		{"deflate (zlib)", "deflate", compress(t, "zlib", plain), plain},
		{"deflate (raw)", "deflate", compress(t, "raw", plain), plain},
		{"empty gzip", "gzip", nil, []byte{}},
		{"empty deflate", "deflate", nil, []byte{}},
		{"br", "br", compress(t, "br", plain), plain},
		{"zstd", "zstd", compress(t, "zstd", plain), plain},
		{"unknown encoding passed through", "compress", []byte("opaque"), []byte("opaque")},
	}
	for _, tt := range tests {
		for _, known := range []bool{true, false} { // with and without Content-Length
			resp := &http.Response{Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(tt.body)), ContentLength: -1}
			if known {
				resp.ContentLength = int64(len(tt.body))
			}
			if tt.encoding != "" {
				resp.Header.Set("Content-Encoding", tt.encoding)
			}
			got, err := readBody(context.Background(), resp, 1<<20, nil)
			if err != nil {
				t.Errorf("%s (length known %v): %v", tt.name, known, err)
				continue
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("%s (length known %v): got %d bytes %.40q, want %d", tt.name, known, len(got), got, len(tt.want))
			}
		}
	}
	// Corrupt gzip fails rather than returning garbage.
	resp := &http.Response{Header: http.Header{"Content-Encoding": {"gzip"}}, Body: io.NopCloser(strings.NewReader("not gzip at all")), ContentLength: -1}
	if _, err := readBody(context.Background(), resp, 1<<20, nil); err == nil {
		t.Error("corrupt gzip body accepted")
	}
}

func TestReadBodyLimit(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 1000)
	gz := compress(t, "gzip", data)
	tests := []struct {
		name   string
		body   []byte
		enc    string
		length int64
		limit  int64
		ok     bool
	}{
		{"known length at limit", data, "", 1000, 1000, true},
		{"known length over limit", data, "", 1000, 999, false},
		{"unknown length at limit", data, "", -1, 1000, true},
		{"unknown length over limit", data, "", -1, 999, false},
		{"decoded size counts, not wire size", gz, "gzip", int64(len(gz)), 999, false},
		{"decoded at limit", gz, "gzip", int64(len(gz)), 1000, true},
	}
	for _, tt := range tests {
		resp := &http.Response{Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(tt.body)), ContentLength: tt.length}
		if tt.enc != "" {
			resp.Header.Set("Content-Encoding", tt.enc)
		}
		got, err := readBody(context.Background(), resp, tt.limit, nil)
		var tl bodyTooLargeError
		switch {
		case tt.ok && (err != nil || !bytes.Equal(got, data)):
			t.Errorf("%s: got %d bytes, %v", tt.name, len(got), err)
		case !tt.ok && !errors.As(err, &tl):
			t.Errorf("%s: error %v, want bodyTooLargeError", tt.name, err)
		}
	}
}

// ---- against the server ----

func TestResponseHeadersLowerCaseAndJoined(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/headers-multi"})
	mustOK(t, res)
	for k := range res.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header name %q is not lower-case", k)
		}
	}
	if got := res.Headers["x-multi"]; got != "one, two" {
		t.Errorf("x-multi = %q, want \"one, two\"", got)
	}
	if got := res.Headers["set-cookie"]; got != "multi_a=1; Path=/\nmulti_b=2; Path=/" {
		t.Errorf("set-cookie = %q, want both joined by a newline", got)
	}
	if res.Headers["content-type"] != "application/json" {
		t.Errorf("content-type = %q", res.Headers["content-type"])
	}
}

func TestResponseDecodesEveryCoding(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	for _, path := range []string{"/x/gzip", "/x/deflate", "/x/br", "/x/zstd"} {
		for _, base := range []string{ts.HTTPURL, ts.TLSURL} {
			res := doReq(t, c, RequestConfig{URL: base + path})
			mustOK(t, res)
			if !bytes.Equal(res.Content, testserver.CompressedJSON) {
				t.Errorf("%s%s: content %.60q is not the decoded document", base, path, res.Content)
			}
			if res.ContentLength != int64(len(testserver.CompressedJSON)) {
				t.Errorf("%s%s: content_length %d, want the decoded size", base, path, res.ContentLength)
			}
		}
	}
}

func TestResponseMaxBodySize(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxBodySize = 1000; c.MaxRetries = 2 })
	for _, tt := range []struct {
		name string
		req  RequestConfig
		ok   bool
	}{
		{"at the client limit", RequestConfig{URL: ts.HTTPURL + "/x/bytes/1000"}, true},
		{"over the client limit", RequestConfig{URL: ts.HTTPURL + "/x/bytes/1001"}, false},
		{"request limit overrides (smaller)", RequestConfig{URL: ts.HTTPURL + "/x/bytes/500", MaxBodySize: 100}, false},
		{"request limit overrides (larger)", RequestConfig{URL: ts.HTTPURL + "/x/bytes/5000", MaxBodySize: 5000}, true},
		{"decoded size counts", RequestConfig{URL: ts.HTTPURL + "/x/gzip", MaxBodySize: int64(len(testserver.CompressedJSON) - 1)}, false},
		{"decoded size counts (br)", RequestConfig{URL: ts.HTTPURL + "/x/br", MaxBodySize: int64(len(testserver.CompressedJSON) - 1)}, false},
		{"decoded size counts (zstd)", RequestConfig{URL: ts.HTTPURL + "/x/zstd", MaxBodySize: int64(len(testserver.CompressedJSON) - 1)}, false},
		{"a br bomb stops at the limit", RequestConfig{URL: ts.HTTPURL + "/x/bomb/br?size=1073741824"}, false},
		{"a zstd bomb stops at the limit", RequestConfig{URL: ts.HTTPURL + "/x/bomb/zstd?size=1073741824"}, false},
		{"streaming is not limited", RequestConfig{URL: ts.HTTPURL + "/x/bytes/5000", Stream: true}, true},
		{"downloads are not limited", RequestConfig{URL: ts.HTTPURL + "/x/bytes/5000", OutputPath: filepath.Join(t.TempDir(), "big")}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res := doReq(t, c, tt.req)
			if tt.ok {
				mustOK(t, res)
				return
			}
			e := wantKind(t, res, KindBodyTooLarge)
			if e.Field != "max_body_size" || !errors.Is(res.Err(), ErrBodyTooLarge) {
				t.Errorf("field %q, errors.Is %v", e.Field, errors.Is(res.Err(), ErrBodyTooLarge))
			}
			if res.Attempts != 1 {
				t.Errorf("%d attempts: too large a body must not be retried", res.Attempts)
			}
			if res.StatusCode != 0 || res.Content != nil {
				t.Errorf("failed request kept status %d and %d bytes", res.StatusCode, len(res.Content))
			}
		})
	}
}

func TestResponseTruncatedBodyRetriedThenExhausted(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 2 })
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/truncate"})
	e := wantKind(t, res, KindRetriesExhausted)
	if e.Last == nil || e.Last.Kind != KindTransport {
		t.Fatalf("last error %+v, want transport", e.Last)
	}
	if res.Attempts != 3 || e.Attempts != 3 {
		t.Errorf("attempts %d / %d, want 3", res.Attempts, e.Attempts)
	}
	if !errors.Is(res.Err(), ErrRetriesExhausted) || !errors.Is(res.Err(), ErrTransport) {
		t.Error("errors.Is does not see retries_exhausted and transport")
	}
	if res.StatusCode != 0 || len(res.Content) != 0 {
		t.Errorf("truncated response kept: status %d, %d bytes", res.StatusCode, len(res.Content))
	}
}

// TestStreamingOnChunk checks that chunks are delivered as they arrive:
// /x/slow-chunks sends 5 chunks 100ms apart, so the first chunk must come
// well before the response ends (a client that buffered the body would
// deliver everything at the end).
func TestStreamingOnChunk(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	var (
		mu    sync.Mutex
		first time.Time
		got   []byte
		calls int
	)
	res := doReq(t, c, RequestConfig{
		URL:    ts.HTTPURL + "/x/slow-chunks?n=5&size=16&interval_ms=100",
		Stream: true,
		OnChunk: func(b []byte) error {
			mu.Lock()
			defer mu.Unlock()
			if calls == 0 {
				first = time.Now()
			}
			calls++
			got = append(got, b...)
			return nil
		},
	})
	end := time.Now()
	mustOK(t, res)
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(got, bytes.Repeat(testserver.PatternBytes(16), 5)) {
		t.Errorf("streamed %d bytes %q", len(got), got)
	}
	if res.Content != nil || res.ContentLength != 80 {
		t.Errorf("content %q length %d; want nothing kept and 80 counted", res.Content, res.ContentLength)
	}
	if calls < 2 {
		t.Errorf("%d chunk callbacks, want the chunks one by one", calls)
	}
	if gap := end.Sub(first); gap < 250*time.Millisecond {
		t.Errorf("first chunk arrived only %v before the end; it should come ~400ms earlier", gap)
	}
}

func TestStreamingBatchOnChunk(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	var mu sync.Mutex
	byIndex := map[int][]byte{}
	own := 0
	rs := []RequestConfig{
		{URL: ts.HTTPURL + "/x/slow-chunks?n=3&size=10&interval_ms=20", Stream: true},
		{URL: ts.HTTPURL + "/x/json"}, // not streaming: body kept
		{URL: ts.TLSURL + "/x/bytes/100000", Stream: true},
		{URL: ts.HTTPURL + "/x/bytes/10", Stream: true, OnChunk: func(b []byte) error { own += len(b); return nil }},
	}
	b, err := c.Submit(testCtx(t), rs, BatchOptions{OnChunk: func(i int, chunk []byte) error {
		mu.Lock()
		defer mu.Unlock()
		byIndex[i] = append(byIndex[i], chunk...)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	res := b.Wait()
	for _, r := range res {
		mustOK(t, r)
	}
	if !bytes.Equal(byIndex[0], bytes.Repeat(testserver.PatternBytes(10), 3)) {
		t.Errorf("index 0 streamed %q", byIndex[0])
	}
	if !bytes.Equal(byIndex[2], testserver.PatternBytes(100000)) {
		t.Errorf("index 2 streamed %d bytes, want the 100000-byte pattern", len(byIndex[2]))
	}
	if _, ok := byIndex[1]; ok || !bytes.Equal(res[1].Content, testserver.JSONBody) {
		t.Error("a non-streaming request went to OnChunk")
	}
	if _, ok := byIndex[3]; ok || own != 10 {
		t.Errorf("a request's own OnChunk must win over the batch's (own got %d bytes)", own)
	}
}

func TestStreamingCallbackErrorNotRetried(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3 })
	boom := errors.New("sink full")
	calls := 0
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/bytes/100", Stream: true,
		OnChunk: func([]byte) error { calls++; return boom }})
	wantKind(t, res, KindIO)
	if res.Attempts != 1 || calls != 1 {
		t.Errorf("attempts %d, callback calls %d: chunks already went out, so no retry", res.Attempts, calls)
	}
	if !errors.Is(res.Err(), boom) {
		t.Error("the callback's error is not wrapped")
	}
}

// TestStreamingFailureAfterChunksNotRetried: once chunks went out a retry
// would hand the caller the same bytes twice, so a body that breaks
// mid-stream fails at once.
func TestStreamingFailureAfterChunksNotRetried(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3 })
	var got []byte
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/truncate", Stream: true,
		OnChunk: func(b []byte) error { got = append(got, b...); return nil }})
	wantKind(t, res, KindTransport)
	if res.Attempts != 1 || res.Error.Attempts != 1 {
		t.Errorf("attempts %d/%d, want 1", res.Attempts, res.Error.Attempts)
	}
	if !bytes.Equal(got, testserver.PatternBytes(100)) {
		t.Errorf("streamed %d bytes, want the 100 sent once", len(got))
	}
}

func TestStreamingCallbackPanicIsAnError(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Concurrency = 1 })
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/bytes/10", Stream: true,
		OnChunk: func([]byte) error { panic("callback bug") }})
	e := wantKind(t, res, KindIO)
	if !strings.Contains(e.Message, "callback bug") {
		t.Errorf("message %q", e.Message)
	}
	// The slot was given back: the single-slot client still works.
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json"}))
}

func listDir(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOutputPathDownload(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	dir := t.TempDir()
	path := filepath.Join(dir, "out.bin")
	const n = 300_000
	res := doReq(t, c, RequestConfig{URL: ts.TLSURL + "/x/bytes/300000", OutputPath: path})
	mustOK(t, res)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, testserver.PatternBytes(n)) {
		t.Errorf("file has %d bytes, not the %d-byte pattern", len(data), n)
	}
	if res.Path != path || res.ContentLength != n || res.Content != nil {
		t.Errorf("path %q length %d content %d bytes", res.Path, res.ContentLength, len(res.Content))
	}
	if names := listDir(t, dir); !reflect.DeepEqual(names, []string{"out.bin"}) {
		t.Errorf("directory holds %v, want only out.bin (no temporary file left)", names)
	}

	// A compressed body is written decoded.
	gz := filepath.Join(dir, "doc.json")
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/gzip", OutputPath: gz}))
	if data, _ := os.ReadFile(gz); !bytes.Equal(data, testserver.CompressedJSON) {
		t.Errorf("gzip download wrote %.40q", data)
	}
}

func TestOutputPathFailedDownloadLeavesNoFile(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 1 })
	dir := t.TempDir()

	path := filepath.Join(dir, "new.bin")
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/truncate", OutputPath: path})
	if !errors.Is(res.Err(), ErrTransport) || res.Attempts != 2 {
		t.Errorf("truncated download: %v after %d attempts, want a transport error retried once", res.Err(), res.Attempts)
	}
	if res.Path != "" {
		t.Errorf("failed download reports path %q", res.Path)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Errorf("failed download left %v", names)
	}

	// An existing file is replaced only by a complete download.
	old := filepath.Join(dir, "old.bin")
	os.WriteFile(old, []byte("previous"), 0o644)
	doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/truncate", OutputPath: old})
	if data, _ := os.ReadFile(old); string(data) != "previous" {
		t.Errorf("failed download changed the existing file to %.40q", data)
	}
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/bytes/10", OutputPath: old}))
	if data, _ := os.ReadFile(old); !bytes.Equal(data, testserver.PatternBytes(10)) {
		t.Errorf("complete download wrote %q", data)
	}
	if names := listDir(t, dir); !reflect.DeepEqual(names, []string{"old.bin"}) {
		t.Errorf("directory holds %v", names)
	}

	// A directory that does not exist: a local I/O error, not retried.
	res = doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/bytes/10", OutputPath: filepath.Join(dir, "missing", "x.bin")})
	e := wantKind(t, res, KindIO)
	if e.Field != "output_path" || res.Attempts != 1 {
		t.Errorf("field %q attempts %d", e.Field, res.Attempts)
	}
}

func TestAcceptEncodingAdvertisesWhatIsDecoded(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	echo := decodeEcho(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/echo"}))
	if got := echo.Headers["accept-encoding"]; len(got) != 1 || got[0] != "gzip, deflate, br, zstd" {
		t.Errorf("Accept-Encoding %q", got)
	}
	echo = decodeEcho(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/echo", Headers: map[string]string{"Accept-Encoding": "identity"}}))
	if got := echo.Headers["accept-encoding"]; len(got) != 1 || got[0] != "identity" {
		t.Errorf("the caller's Accept-Encoding became %q", got)
	}
}

// lowerName agrees with strings.ToLower, for the names of its table and
// for others.
func TestLowerName(t *testing.T) {
	for canonical, lower := range lowerNames {
		if got := lowerName(canonical); got != strings.ToLower(canonical) || got != lower {
			t.Errorf("lowerName(%q) = %q, want %q", canonical, got, strings.ToLower(canonical))
		}
	}
	for _, name := range []string{"X-Custom-Thing", "content-type", "CONTENT-TYPE", "Content-type", ""} {
		if got := lowerName(name); got != strings.ToLower(name) {
			t.Errorf("lowerName(%q) = %q, want %q", name, got, strings.ToLower(name))
		}
	}
}
