package testserver

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Fixed payloads, built once so benchmark endpoints allocate nothing per
// request.
var (
	// JSONBody is what /x/json returns.
	JSONBody = []byte(`{"id":12345,"name":"fastreq","description":"fixed JSON document for benchmarks","active":true,"score":98.6,"tags":["http","client","bench"],"owner":{"login":"fastreq","id":1},"items":[1,2,3,4,5]}`)

	// CompressedJSON is the decoded body of /x/gzip, /x/deflate, /x/br
	// and /x/zstd.
	CompressedJSON = []byte(`{"compressed":true,"message":"` + strings.Repeat("fastreq ", 32) + `"}`)

	gzipBody    = mustCompress(func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
	deflateBody = mustCompress(func(w io.Writer) io.WriteCloser { return zlib.NewWriter(w) })
	brBody      = mustCompress(func(w io.Writer) io.WriteCloser { return brotli.NewWriter(w) })
	zstdBody    = mustCompress(func(w io.Writer) io.WriteCloser { return newZstdWriter(w) })

	// pattern repeats byte(i % 256); its length is a multiple of 256 so
	// writing it back to back keeps the sequence unbroken.
	pattern = func() []byte {
		b := make([]byte, 64<<10)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
)

// MaxBytes is the largest body /x/bytes/N serves.
const MaxBytes = 1 << 30

// defaultStall stands in for "forever": long enough for any test, bounded so
// a forgotten request cannot pin a goroutine indefinitely.
const defaultStall = time.Hour

func mustCompress(newWriter func(io.Writer) io.WriteCloser) []byte {
	var buf bytes.Buffer
	zw := newWriter(&buf)
	if _, err := zw.Write(CompressedJSON); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// PatternBytes returns what /x/bytes/N sends: byte i is byte(i % 256).
func PatternBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func (h *handler) registerMisbehaving() {
	m := h.mux
	m.HandleFunc("/x/reset", h.reset)
	m.HandleFunc("/x/stall", h.stall)
	m.HandleFunc("/x/stall-body", h.stallBody)
	m.HandleFunc("/x/truncate", h.truncate)
	m.HandleFunc("/x/status-then-ok", h.statusThenOK)
	m.HandleFunc("/x/flaky-reset", h.flakyReset)
	m.HandleFunc("/x/json", h.jsonDoc)
	m.HandleFunc("/x/bytes/{n}", h.byteStream)
	m.HandleFunc("/x/redirect-loop", h.redirectLoop)
	m.HandleFunc("/x/redirect-chain", h.redirectChain)
	m.HandleFunc("/x/set-cookie", h.setCookie)
	m.HandleFunc("/x/cookies", h.cookies)
	m.HandleFunc("/x/headers-multi", h.headersMulti)
	m.HandleFunc("/x/gzip", h.compressed("gzip", gzipBody))
	m.HandleFunc("/x/deflate", h.compressed("deflate", deflateBody))
	m.HandleFunc("/x/br", h.compressed("br", brBody))
	m.HandleFunc("/x/zstd", h.compressed("zstd", zstdBody))
	m.HandleFunc("/x/echo", h.echo)
	m.HandleFunc("/x/slow-chunks", h.slowChunks)
	m.HandleFunc("/x/proto", h.proto)
	m.HandleFunc("/x/ratelimit", h.rateLimited)
}

// abortConn kills the connection without a response. On HTTP/1 it hijacks
// and closes with SO_LINGER 0 so the peer sees a TCP RST; HTTP/2 cannot
// hijack, so the stream is reset instead.
func abortConn(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 {
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			if tc := tcpConn(c); tc != nil {
				_ = tc.SetLinger(0)
				_ = tc.Close()
			}
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// sleep waits d. If the client goes away or the servers are closing first,
// it aborts the handler so that no well-formed response goes out.
func (h *handler) sleep(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		panic(http.ErrAbortHandler)
	case <-h.done:
		panic(http.ErrAbortHandler)
	}
}

func (h *handler) reset(w http.ResponseWriter, r *http.Request) { abortConn(w, r) }

// stall sends nothing for ?seconds (fractions allowed, default an hour),
// then a short 200.
func (h *handler) stall(w http.ResponseWriter, r *http.Request) {
	h.sleep(r, seconds(r.URL.Query(), "seconds", defaultStall))
	writeText(w, http.StatusOK, "done\n")
}

// stallBody promises 200 bytes, sends the first 100, stalls for ?seconds
// and then sends the rest.
func (h *handler) stallBody(w http.ResponseWriter, r *http.Request) {
	d := seconds(r.URL.Query(), "seconds", defaultStall)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", "200")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(pattern[:100])
	_ = http.NewResponseController(w).Flush()
	h.sleep(r, d)
	_, _ = w.Write(pattern[100:200])
}

// truncate declares 1000 bytes, sends 100 and drops the connection (the
// stream on HTTP/2).
func (h *handler) truncate(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", "1000")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(pattern[:100])
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

type attemptsBody struct {
	Key      string `json:"key"`
	Attempts int    `json:"attempts"`
	Status   int    `json:"status,omitempty"`
}

// statusThenOK fails the first ?fail (default 1) requests per ?key with
// ?status (default 503), adding Retry-After verbatim from ?retry_after.
func (h *handler) statusThenOK(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := q.Get("key")
	n := h.hit(key)
	if n <= intParam(q, "fail", 1) {
		status := intParam(q, "status", http.StatusServiceUnavailable)
		if q.Has("retry_after") {
			w.Header().Set("Retry-After", q.Get("retry_after"))
		}
		writeJSON(w, status, attemptsBody{Key: key, Attempts: n, Status: status})
		return
	}
	writeJSON(w, http.StatusOK, attemptsBody{Key: key, Attempts: n})
}

// flakyReset resets the connection for the first ?fail (default 1)
// requests per ?key.
func (h *handler) flakyReset(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := q.Get("key")
	n := h.hit(key)
	if n <= intParam(q, "fail", 1) {
		abortConn(w, r)
		return
	}
	writeJSON(w, http.StatusOK, attemptsBody{Key: key, Attempts: n})
}

func (h *handler) jsonDoc(w http.ResponseWriter, r *http.Request) {
	writeRaw(w, http.StatusOK, "application/json", JSONBody)
}

// bytes streams N pattern bytes straight from a shared buffer.
func (h *handler) byteStream(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 0 || n > MaxBytes {
		http.Error(w, "bad size", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	for n > 0 {
		chunk := pattern
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		n -= int64(len(chunk))
	}
}

func (h *handler) redirectLoop(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/x/redirect-loop", http.StatusFound)
}

// redirectChain redirects ?n times (to n-1, n-2, ...) and then answers 200.
func (h *handler) redirectChain(w http.ResponseWriter, r *http.Request) {
	n := intParam(r.URL.Query(), "n", 0)
	if n > 0 {
		http.Redirect(w, r, "/x/redirect-chain?n="+strconv.Itoa(n-1), http.StatusFound)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"redirected": true, "url": r.URL.RequestURI()})
}

// setCookie sets every query parameter as a cookie with Path=/.
func (h *handler) setCookie(w http.ResponseWriter, r *http.Request) {
	set := map[string]string{}
	for name, values := range r.URL.Query() {
		for _, v := range values {
			http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: "/"})
			set[name] = v
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"set": set})
}

// cookies reports the cookies the request carried as {"cookies": {...}}.
func (h *handler) cookies(w http.ResponseWriter, r *http.Request) {
	got := map[string]string{}
	for _, c := range r.Cookies() {
		got[c.Name] = c.Value
	}
	writeJSON(w, http.StatusOK, map[string]any{"cookies": got})
}

// headersMulti repeats X-Multi and Set-Cookie on separate header lines.
func (h *handler) headersMulti(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Add("X-Multi", "one")
	hd.Add("X-Multi", "two")
	hd.Add("Set-Cookie", "multi_a=1; Path=/")
	hd.Add("Set-Cookie", "multi_b=2; Path=/")
	writeJSON(w, http.StatusOK, map[string]any{"x-multi": []string{"one", "two"}})
}

// compressed serves CompressedJSON pre-encoded with the given coding,
// whatever the request's Accept-Encoding says.
func (h *handler) compressed(coding string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", coding)
		writeRaw(w, http.StatusOK, "application/json", body)
	}
}

// EchoResponse is the JSON document /x/echo returns.
type EchoResponse struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	URL    string              `json:"url"` // request URI as received
	Host   string              `json:"host"`
	Proto  string              `json:"proto"`
	TLS    bool                `json:"tls"`
	Query  map[string][]string `json:"query"`
	// Headers has lower-case names and includes "host" and, when the
	// body was chunked, "transfer-encoding".
	Headers  map[string][]string `json:"headers"`
	Body     string              `json:"body"`
	BodySize int                 `json:"body_size"`
	// Form is the parsed body when it is application/x-www-form-urlencoded.
	Form map[string][]string `json:"form"`
	// JSON is the parsed body when it is valid JSON, else null.
	JSON any `json:"json"`
}

func (h *handler) echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	resp := EchoResponse{
		Method:   r.Method,
		Path:     r.URL.Path,
		URL:      r.RequestURI,
		Host:     r.Host,
		Proto:    r.Proto,
		TLS:      r.TLS != nil,
		Query:    map[string][]string(r.URL.Query()),
		Headers:  map[string][]string{},
		Body:     string(body),
		BodySize: len(body),
		Form:     map[string][]string{},
	}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		resp.Headers[lk] = append(resp.Headers[lk], vs...)
	}
	resp.Headers["host"] = []string{r.Host}
	if len(r.TransferEncoding) > 0 {
		resp.Headers["transfer-encoding"] = r.TransferEncoding
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		if f, err := url.ParseQuery(string(body)); err == nil {
			resp.Form = f
		}
	}
	if len(body) > 0 && json.Valid(body) {
		_ = json.Unmarshal(body, &resp.JSON)
	}
	writeJSON(w, http.StatusOK, resp)
}

// slowChunks streams ?n (default 5) chunks of ?size (default 16) pattern
// bytes, flushing each, ?interval_ms (default 100) apart.
func (h *handler) slowChunks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n := intParam(q, "n", 5)
	size := min(max(intParam(q, "size", 16), 0), len(pattern))
	interval := time.Duration(intParam(q, "interval_ms", 100)) * time.Millisecond
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for i := 0; i < n; i++ {
		if i > 0 {
			h.sleep(r, interval)
		}
		if _, err := w.Write(pattern[:size]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func (h *handler) proto(w http.ResponseWriter, r *http.Request) {
	writeText(w, http.StatusOK, r.Proto)
}

func seconds(q url.Values, name string, def time.Duration) time.Duration {
	f, err := strconv.ParseFloat(q.Get(name), 64)
	if err != nil || f < 0 {
		return def
	}
	return time.Duration(f * float64(time.Second))
}

func intParam(q url.Values, name string, def int) int {
	n, err := strconv.Atoi(q.Get(name))
	if err != nil {
		return def
	}
	return n
}

func writeRaw(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeText(w http.ResponseWriter, status int, s string) {
	writeRaw(w, status, "text/plain; charset=utf-8", []byte(s))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeRaw(w, status, "application/json", buf.Bytes())
}

// newZstdWriter is a zstd encoder with a window RFC 9659 allows for HTTP.
func newZstdWriter(w io.Writer) io.WriteCloser {
	zw, err := zstd.NewWriter(w, zstd.WithWindowSize(1<<20), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err)
	}
	return zw
}
