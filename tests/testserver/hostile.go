package testserver

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/andybalholm/brotli"
)

// Hostile servers and endpoints: the inputs a careless HTTP client gets
// hurt by. Endpoints on the shared handler:
//
//	/x/bomb/gzip?size=N     a gzip body that decodes to N zero bytes
//	/x/bomb/deflate?size=N  the same, zlib-wrapped ("deflate")
//	/x/bomb/br, /x/bomb/zstd  the same in brotli and zstd (encoded as served)
//	/x/endless              an unending chunked body
//	/x/drop-after-read?key=K  reads the request, counts it, drops the connection
//	/x/count?key=K          {"key": K, "count": N} for the per-key counters
//	/x/many-hosts/stats     {"open": N, "accepted": M} of the many-hosts listener
//
// Raw listeners (see Servers): a second plain HTTP port, the many-hosts
// listener reachable at every 127.X.Y.Z, a server that accepts and never
// writes, one that reads requests and never answers, an address whose
// accept backlog is full (connects hang) and one where nothing listens.

// MaxBomb is the largest decoded size /x/bomb/* serves (1 TiB, about 1 GB
// on the wire).
const MaxBomb = 1 << 40

// DefaultBomb is the decoded size of /x/bomb/* without ?size.
const DefaultBomb = 1 << 30

// errNoRawSockets: the system lacks the socket calls behind the closed
// port and the blackhole.
var errNoRawSockets = errors.New("testserver: raw sockets are not supported on this system")

// bombBlock is the decoded size of one precomputed deflate chunk.
const bombBlock = 1 << 20

// bombChunks is how many chunks one write carries.
const bombChunks = 64

var (
	bombOnce sync.Once
	// bombChunk is deflate data decoding to bombBlock zeros: complete,
	// non-final blocks ending with a sync flush, so copies can follow one
	// another (back-references only ever reach zeros).
	bombChunk []byte
	// bombWrite is bombChunks copies of bombChunk back to back.
	bombWrite []byte
	// bombChunkCRC is the CRC-32 of bombBlock zeros.
	bombChunkCRC uint32
)

func initBomb() {
	bombOnce.Do(func() {
		var buf bytes.Buffer
		fw, err := flate.NewWriter(&buf, flate.BestCompression)
		if err != nil {
			panic(err)
		}
		zeros := make([]byte, bombBlock)
		if _, err := fw.Write(zeros); err != nil {
			panic(err)
		}
		if err := fw.Flush(); err != nil {
			panic(err)
		}
		bombChunk = bytes.Clone(buf.Bytes())
		bombWrite = bytes.Repeat(bombChunk, bombChunks)
		bombChunkCRC = crc32.ChecksumIEEE(zeros)
	})
}

// bombTail is deflate data for n zeros ending with the final block.
func bombTail(n int) []byte {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		panic(err)
	}
	if _, err := fw.Write(make([]byte, n)); err != nil {
		panic(err)
	}
	if err := fw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// ZerosCRC32 returns the IEEE CRC-32 of n zero bytes without hashing them.
func ZerosCRC32(n int64) uint32 {
	initBomb()
	var crc uint32 // CRC of the empty string
	blocks, rest := n/bombBlock, n%bombBlock
	// Square-and-multiply over whole blocks: pow is the CRC of 2^i blocks.
	pow, powLen := bombChunkCRC, int64(bombBlock)
	for blocks > 0 {
		if blocks&1 != 0 {
			crc = crc32Combine(crc, pow, powLen)
		}
		pow = crc32Combine(pow, pow, powLen)
		powLen *= 2
		blocks >>= 1
	}
	if rest > 0 {
		crc = crc32Combine(crc, crc32.ChecksumIEEE(make([]byte, rest)), rest)
	}
	return crc
}

// ZerosAdler32 returns the Adler-32 of n zero bytes: A stays 1, B grows by
// 1 per byte.
func ZerosAdler32(n int64) uint32 {
	return uint32(n%65521)<<16 | 1
}

// crc32Combine is zlib's crc32_combine: the CRC of A||B from CRC(A),
// CRC(B) and len(B).
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	return multModP(x2nModP(uint64(lenB), 3), crcA) ^ crcB
}

// multModP multiplies a and b modulo the reflected CRC-32 polynomial. a
// must not be zero (it never is here: it is a power of x).
func multModP(a, b uint32) uint32 {
	m := uint32(1) << 31
	var p uint32
	for {
		if a&m != 0 {
			p ^= b
			if a&(m-1) == 0 {
				return p
			}
		}
		m >>= 1
		if b&1 != 0 {
			b = b>>1 ^ crc32.IEEE
		} else {
			b >>= 1
		}
	}
}

// x2nTable[k] is x^(2^k) mod p.
var x2nTable = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = multModP(p, p)
	}
	return t
}()

// x2nModP returns x^(n * 2^k) mod p.
func x2nModP(n uint64, k uint) uint32 {
	p := uint32(1) << 31 // x^0
	for n != 0 {
		if n&1 != 0 {
			p = multModP(x2nTable[k&31], p)
		}
		n >>= 1
		k++
	}
	return p
}

// bomb streams a body decoding to ?size zeros, compressed about 1000:1,
// with no Content-Length, until done or the client goes away.
func (h *handler) bomb(w http.ResponseWriter, r *http.Request) {
	coding := r.PathValue("coding")
	if coding != "gzip" && coding != "deflate" && coding != "br" && coding != "zstd" {
		http.Error(w, "coding must be gzip, deflate, br or zstd", http.StatusNotFound)
		return
	}
	size := int64(DefaultBomb)
	if s := r.URL.Query().Get("size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > MaxBomb {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		size = n
	}
	initBomb()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Encoding", coding)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// Flush the header now: otherwise net/http would add a Content-Length
	// to a body small enough to fit its buffer.
	_ = http.NewResponseController(w).Flush()
	if coding == "br" || coding == "zstd" {
		h.encodedZeros(w, r, coding, size)
		return
	}
	if coding == "gzip" {
		// Fixed header: no name, no mtime, OS unknown.
		_, _ = w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff})
	} else {
		_, _ = w.Write([]byte{0x78, 0xda}) // zlib, 32K window, best compression
	}
	blocks := size / bombBlock
	for blocks > 0 {
		if h.gone(r) {
			panic(http.ErrAbortHandler) // no clean end of the body
		}
		n := min(blocks, bombChunks)
		if _, err := w.Write(bombWrite[:int(n)*len(bombChunk)]); err != nil {
			return
		}
		blocks -= n
	}
	_, _ = w.Write(bombTail(int(size % bombBlock)))
	var trailer [8]byte
	if coding == "gzip" {
		binary.LittleEndian.PutUint32(trailer[:4], ZerosCRC32(size))
		binary.LittleEndian.PutUint32(trailer[4:], uint32(size))
		_, _ = w.Write(trailer[:8])
	} else {
		binary.BigEndian.PutUint32(trailer[:4], ZerosAdler32(size))
		_, _ = w.Write(trailer[:4])
	}
}

// encodedZeros streams size zero bytes through a br or zstd encoder,
// compressed as it goes (these codings have no cheap precomputed form).
func (h *handler) encodedZeros(w http.ResponseWriter, r *http.Request, coding string, size int64) {
	var enc io.WriteCloser
	if coding == "br" {
		enc = brotli.NewWriterLevel(w, brotli.BestSpeed)
	} else {
		enc = newZstdWriter(w)
	}
	zeros := make([]byte, bombBlock)
	for size > 0 {
		if h.gone(r) {
			panic(http.ErrAbortHandler) // no clean end of the body
		}
		n := min(size, bombBlock)
		if _, err := enc.Write(zeros[:n]); err != nil {
			return
		}
		size -= n
	}
	_ = enc.Close()
}

// gone reports whether the client or the servers went away.
func (h *handler) gone(r *http.Request) bool {
	select {
	case <-r.Context().Done():
		return true
	case <-h.done:
		return true
	default:
		return false
	}
}

// endlessLimit bounds /x/endless (1 TiB or defaultStall) so a forgotten
// reader cannot keep it going forever.
const endlessLimit = 1 << 40

// endless streams pattern bytes, chunked, until the client goes away. The
// body never ends cleanly: at its limits the handler aborts.
func (h *handler) endless(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	deadline := time.Now().Add(defaultStall)
	for sent := 0; sent < endlessLimit && !h.gone(r) && time.Now().Before(deadline); sent += len(pattern) {
		if _, err := w.Write(pattern); err != nil {
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// dropAfterRead reads the whole request, counts it under ?key and drops
// the connection without a response (a TCP RST on HTTP/1).
func (h *handler) dropAfterRead(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, maxBody))
	h.hit(r.URL.Query().Get("key"))
	abortConn(w, r)
}

// countHits reports the per-key counter shared by /x/drop-after-read,
// /x/status-then-ok and /x/flaky-reset.
func (h *handler) countHits(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	writeJSON(w, http.StatusOK, map[string]any{"key": key, "count": h.count(key)})
}

// ConnStats counts the connections of the many-hosts listener.
type ConnStats struct {
	Open     int64 `json:"open"`     // connections open right now
	Accepted int64 `json:"accepted"` // connections accepted so far
	Rejected int64 `json:"rejected"` // connections closed at once: not loopback
}

func (h *handler) manyHostsStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.many.stats())
}

// busyFor holds a request for ?hold=S seconds (default 0.05), counting
// per ?key how many run at once; /x/busy-stats?key=K reports
// {"running", "max", "served"}.
func (h *handler) busyFor(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	hold := 0.05
	if s := r.URL.Query().Get("hold"); s != "" {
		if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 && v <= 60 {
			hold = v
		}
	}
	h.busyMu.Lock()
	if h.busy == nil {
		h.busy = map[string]*[2]int{}
	}
	c := h.busy[key]
	if c == nil {
		c = &[2]int{}
		h.busy[key] = c
	}
	c[0]++
	c[1] = max(c[1], c[0])
	h.busyMu.Unlock()
	select {
	case <-time.After(time.Duration(hold * float64(time.Second))):
	case <-r.Context().Done():
	case <-h.done:
	}
	h.busyMu.Lock()
	c[0]--
	h.busyMu.Unlock()
	h.hit("busy:" + key)
	writeJSON(w, http.StatusOK, map[string]any{"key": key})
}

func (h *handler) busyStats(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	h.busyMu.Lock()
	var running, most int
	if c := h.busy[key]; c != nil {
		running, most = c[0], c[1]
	}
	h.busyMu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"running": running, "max": most, "served": h.count("busy:" + key)})
}

func (h *handler) registerHostile() {
	m := h.mux
	m.HandleFunc("/x/busy", h.busyFor)
	m.HandleFunc("/x/busy-stats", h.busyStats)
	m.HandleFunc("/x/bomb/{coding}", h.bomb)
	m.HandleFunc("/x/endless", h.endless)
	m.HandleFunc("/x/drop-after-read", h.dropAfterRead)
	m.HandleFunc("/x/count", h.countHits)
	m.HandleFunc("/x/many-hosts/stats", h.manyHostsStats)
}

// connCounter counts a listener's connections.
type connCounter struct {
	open, accepted atomic.Int64
	rejected       *atomic.Int64 // the listener's count, once it runs
}

func (c *connCounter) stats() ConnStats {
	st := ConnStats{Open: c.open.Load(), Accepted: c.accepted.Load()}
	if c.rejected != nil {
		st.Rejected = c.rejected.Load()
	}
	return st
}

// counted wraps an accepted connection so that c counts it.
func (c *connCounter) counted(conn net.Conn) net.Conn {
	c.accepted.Add(1)
	c.open.Add(1)
	return &countedConn{Conn: conn, c: c}
}

// countedConn decrements its counter's open count once, on Close.
type countedConn struct {
	net.Conn
	c    *connCounter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.c.open.Add(-1) })
	return c.Conn.Close()
}

// rawServer runs an accept loop with a handler per connection and waits
// for all of them on close.
type rawServer struct {
	ln net.Listener
	wg sync.WaitGroup
}

// startRaw serves ln with handle (nil: accept and hold the connection
// without a goroutine; the tracker closes it at shutdown).
func startRaw(ln net.Listener, handle func(net.Conn)) *rawServer {
	s := &rawServer{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					continue
				}
				// EMFILE and the like: back off instead of spinning.
				time.Sleep(10 * time.Millisecond)
				continue
			}
			if handle == nil {
				continue
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				handle(c)
			}()
		}
	}()
	return s
}

func (s *rawServer) close() { _ = s.ln.Close() }
func (s *rawServer) wait()  { s.wg.Wait() }

// readForever reads and discards what the peer sends until it goes away
// or the connection is closed, and never writes.
func readForever(c net.Conn) {
	_, _ = io.Copy(io.Discard, c)
	_ = c.Close()
}
