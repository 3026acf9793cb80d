package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"sync"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Wire is the connection an impersonating client's x/net/http2
// transport writes to. x/net/http2 chooses the frames, their values and
// its flow control; h2Wire rewrites how three kinds look on the wire, so
// that the server reads what the browser of the profile sends:
//   - the client's first SETTINGS frame carries the profile's settings in
//     the profile's order (x/net/http2 sends its own set in a fixed
//     order; newH2Transport configures it with the values the profile
//     announces, so both sides agree on them);
//   - every header block (a HEADERS frame and its CONTINUATIONs) is
//     decoded and encoded again with the pseudo-header fields and the
//     header fields in the profile's order, in a HEADERS frame that
//     carries the profile's priority.
//
// Every other frame, and the client preface, passes unchanged and in
// order. Reads pass through untouched.
//
// HPACK state: the decoder mirrors x/net/http2's encoder (the same table
// size, which x/net/http2 caps at 4096 and changes only by a size update
// at the start of a block); h2Wire's own encoder is what the server's
// decoder mirrors. It follows each size update x/net/http2 makes, so it
// never uses a table larger than the server allows.
type h2Wire struct {
	net.Conn
	prof *h2Profile
	rank map[string]int

	mu sync.Mutex
	// preface is how many bytes of the client preface are still to pass.
	preface int
	// in holds the bytes written of a frame not yet complete (a frame
	// that is rewritten), or of a frame header.
	in []byte
	// pass is how many bytes of a frame passed unchanged are still to come.
	pass     int
	settings bool // the first SETTINGS has been rewritten
	// block collects a header block; blockStream and blockEnd are its
	// HEADERS frame's stream and END_STREAM flag.
	block       []byte
	blockStream uint32
	blockEnd    bool
	inBlock     bool

	dec    *hpack.Decoder
	fields []hpack.HeaderField
	enc    *hpack.Encoder
	encBuf bytes.Buffer
	out    bytes.Buffer
	fr     *http2.Framer
}

const (
	frameHeaderLen = 9
	// wireMaxFrame is the largest frame h2Wire writes: the protocol's
	// minimum SETTINGS_MAX_FRAME_SIZE, which every server accepts.
	wireMaxFrame = 16384
	// xnetHeaderTable is x/net/http2's HPACK encoder table size limit
	// (http2.Transport.MaxEncoderHeaderTableSize, left at its default).
	xnetHeaderTable = 4096
)

func newH2Wire(c net.Conn, p *profile) *h2Wire {
	w := &h2Wire{Conn: c, prof: p.h2, rank: p.rank, preface: len(http2.ClientPreface)}
	w.dec = hpack.NewDecoder(xnetHeaderTable, func(f hpack.HeaderField) { w.fields = append(w.fields, f) })
	w.enc = hpack.NewEncoder(&w.encBuf)
	w.fr = http2.NewFramer(&w.out, nil)
	return w
}

var errH2Wire = errors.New("http2: malformed frame from the transport")

// Write takes what x/net/http2 writes, a byte stream of whole and partial
// frames, and writes it on with the rewrites: everything that is complete
// goes out in one write to the connection; the rest of a frame that is
// rewritten waits for its next Write (x/net/http2 flushes whole frames,
// so it comes before anything waits for the frame).
func (w *h2Wire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.out.Reset()
	if err := w.feed(p); err != nil {
		return 0, err
	}
	if w.out.Len() > 0 {
		if _, err := w.Conn.Write(w.out.Bytes()); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (w *h2Wire) feed(p []byte) error {
	if w.preface > 0 {
		n := min(w.preface, len(p))
		w.out.Write(p[:n])
		w.preface -= n
		p = p[n:]
	}
	for len(p) > 0 {
		if w.pass > 0 {
			n := min(w.pass, len(p))
			w.out.Write(p[:n])
			w.pass -= n
			p = p[n:]
			continue
		}
		// Gather the frame header, then the payload of a rewritten frame.
		need := frameHeaderLen
		if len(w.in) >= frameHeaderLen {
			need += frameLen(w.in)
		}
		n := min(need-len(w.in), len(p))
		w.in = append(w.in, p[:n]...)
		p = p[n:]
		if len(w.in) == frameHeaderLen && !w.rewrites(w.in) {
			w.out.Write(w.in)
			w.pass = frameLen(w.in)
			w.in = w.in[:0]
			continue
		}
		if len(w.in) >= frameHeaderLen && len(w.in) == frameHeaderLen+frameLen(w.in) {
			if err := w.frame(w.in); err != nil {
				return err
			}
			w.in = w.in[:0]
		}
	}
	return nil
}

// frameLen is the payload length in a frame header.
func frameLen(h []byte) int { return int(h[0])<<16 | int(h[1])<<8 | int(h[2]) }

// rewrites says whether the frame with this header is rewritten (and so
// gathered whole) rather than passed.
func (w *h2Wire) rewrites(h []byte) bool {
	switch http2.FrameType(h[3]) {
	case http2.FrameHeaders, http2.FrameContinuation:
		return true
	case http2.FrameSettings:
		return !w.settings && http2.Flags(h[4])&http2.FlagSettingsAck == 0
	}
	return false
}

// frame writes the rewrite of one whole frame (header and payload).
func (w *h2Wire) frame(f []byte) error {
	typ, flags := http2.FrameType(f[3]), http2.Flags(f[4])
	stream := binary.BigEndian.Uint32(f[5:9]) & (1<<31 - 1)
	payload := f[frameHeaderLen:]
	switch typ {
	case http2.FrameSettings:
		w.settings = true
		return w.fr.WriteSettings(w.prof.settings...)
	case http2.FrameHeaders:
		if w.inBlock {
			return errH2Wire
		}
		if flags&http2.FlagHeadersPadded != 0 {
			if len(payload) < 1 || int(payload[0]) > len(payload)-1 {
				return errH2Wire
			}
			payload = payload[1 : len(payload)-int(payload[0])]
		}
		if flags&http2.FlagHeadersPriority != 0 {
			if len(payload) < 5 {
				return errH2Wire
			}
			payload = payload[5:]
		}
		w.inBlock, w.blockStream, w.blockEnd = true, stream, flags&http2.FlagHeadersEndStream != 0
		w.block = append(w.block[:0], payload...)
	case http2.FrameContinuation:
		if !w.inBlock || stream != w.blockStream {
			return errH2Wire
		}
		w.block = append(w.block, payload...)
	}
	if flags&http2.FlagHeadersEndHeaders == 0 { // the same bit as CONTINUATION's END_HEADERS
		return nil
	}
	w.inBlock = false
	return w.headers()
}

// headers writes the header block gathered in w.block again, in the
// profile's order, as a HEADERS frame (with CONTINUATIONs when it is
// longer than wireMaxFrame allows) with the profile's priority.
func (w *h2Wire) headers() error {
	w.followSizeUpdates(w.block)
	w.fields = w.fields[:0]
	if _, err := w.dec.Write(w.block); err != nil {
		return err
	}
	if err := w.dec.Close(); err != nil {
		return err
	}
	slices.SortStableFunc(w.fields, w.order)
	w.encBuf.Reset()
	for _, f := range w.fields {
		if err := w.enc.WriteField(f); err != nil {
			return err
		}
	}
	block := w.encBuf.Bytes()
	first := min(len(block), wireMaxFrame-5) // 5: the priority fields
	if err := w.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: w.blockStream, BlockFragment: block[:first],
		EndStream: w.blockEnd, EndHeaders: first == len(block), Priority: w.prof.priority,
	}); err != nil {
		return err
	}
	for block = block[first:]; len(block) > 0; {
		n := min(len(block), wireMaxFrame)
		if err := w.fr.WriteContinuation(w.blockStream, n == len(block), block[:n]); err != nil {
			return err
		}
		block = block[n:]
	}
	return nil
}

// order sorts pseudo-header fields first, in the profile's order, then
// the profile's headers in its order, then the others as they came.
func (w *h2Wire) order(a, b hpack.HeaderField) int {
	return w.position(a) - w.position(b)
}

// position is f's place in the profile's order (profile.rank): its
// pseudo-header fields, then its headers, then the rest (a pseudo-header
// it does not name before its headers, any other header after them).
func (w *h2Wire) position(f hpack.HeaderField) int {
	if r, ok := w.rank[f.Name]; ok {
		return r
	}
	if f.IsPseudo() {
		return -1
	}
	return len(w.rank)
}

// followSizeUpdates makes h2Wire's encoder take each dynamic table size
// update at the start of x/net/http2's block (RFC 7541 6.3: 001 and a
// 5-bit prefixed integer).
func (w *h2Wire) followSizeUpdates(b []byte) {
	for len(b) > 0 && b[0]&0xe0 == 0x20 {
		v, n := hpackInt(b, 5)
		if n == 0 {
			return
		}
		w.enc.SetMaxDynamicTableSize(uint32(v))
		b = b[n:]
	}
}

// hpackInt decodes an HPACK integer with an n-bit prefix (RFC 7541
// 5.1), returning it and the bytes it took (0: incomplete or too large).
func hpackInt(b []byte, n uint) (uint64, int) {
	mask := byte(1<<n - 1)
	v := uint64(b[0] & mask)
	if v < uint64(mask) {
		return v, 1
	}
	var m uint
	for i := 1; i < len(b) && m < 63; i++ {
		v += uint64(b[i]&0x7f) << m
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
		m += 7
	}
	return 0, 0
}
