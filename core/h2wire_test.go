package core

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// captureConn is a net.Conn that keeps what is written to it.
type captureConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *captureConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// clientStream is what x/net/http2 could write on a connection: the
// preface, SETTINGS, WINDOW_UPDATE, then per request a header block (one
// of them long enough for CONTINUATIONs, one after a table size update),
// DATA and a PING, and a SETTINGS ACK.
func clientStream(t *testing.T) (stream []byte, requests [][]hpack.HeaderField) {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&buf, nil)
	fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 6291456},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: 16384})
	fr.WriteWindowUpdate(0, 15663105)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for i := range 6 {
		fields := []hpack.HeaderField{{Name: ":authority", Value: "example.com"}, {Name: ":method", Value: "POST"},
			{Name: ":path", Value: "/p"}, {Name: ":scheme", Value: "https"}, {Name: "x-other", Value: "1"},
			{Name: "accept", Value: "*/*"}, {Name: "user-agent", Value: "ua"}, {Name: "cookie", Value: "a=b", Sensitive: true}}
		if i == 2 {
			fields = append(fields, hpack.HeaderField{Name: "x-big", Value: string(bytes.Repeat([]byte("z"), 40000))})
		}
		if i == 4 {
			enc.SetMaxDynamicTableSize(256) // as after the server's SETTINGS_HEADER_TABLE_SIZE
		}
		block.Reset()
		for _, f := range fields {
			enc.WriteField(f)
		}
		stream := uint32(2*i + 1)
		b := block.Bytes()
		first := min(len(b), 16384)
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: b[:first], EndHeaders: first == len(b)})
		for b = b[first:]; len(b) > 0; {
			n := min(len(b), 16384)
			fr.WriteContinuation(stream, n == len(b), b[:n])
			b = b[n:]
		}
		fr.WriteData(stream, true, bytes.Repeat([]byte{byte(i)}, 20000))
		fr.WritePing(false, [8]byte{byte(i)})
		requests = append(requests, fields)
	}
	fr.WriteSettingsAck()
	return buf.Bytes(), requests
}

// readWire parses what h2Wire wrote as a server would, returning the
// SETTINGS, each request's header fields and priority, and the DATA bytes.
func readWire(t *testing.T, wire []byte) (settings []http2.Setting, headers [][]hpack.HeaderField, prio []http2.PriorityParam, data int) {
	t.Helper()
	if !bytes.HasPrefix(wire, []byte(http2.ClientPreface)) {
		t.Fatal("no client preface")
	}
	fr := http2.NewFramer(nil, bytes.NewReader(wire[len(http2.ClientPreface):]))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = 1 << 20
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("reading the rewritten stream: %v", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				f.ForeachSetting(func(s http2.Setting) error { settings = append(settings, s); return nil })
			}
		case *http2.MetaHeadersFrame:
			headers = append(headers, f.Fields)
			prio = append(prio, f.Priority)
		case *http2.DataFrame:
			data += len(f.Data())
		}
	}
}

// h2Wire rewrites the same whatever the chunks x/net/http2's writes come
// in, and the server reads the profile's SETTINGS and every request's
// fields, in the profile's order, with the profile's priority.
func TestH2WireRewrite(t *testing.T) {
	stream, requests := clientStream(t)
	p := findProfile("firefox135")
	whole := &captureConn{}
	if n, err := newH2Wire(whole, p).Write(stream); err != nil || n != len(stream) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	settings, headers, prio, data := readWire(t, whole.out.Bytes())
	if !slices.Equal(settings, p.h2.settings) || len(headers) != len(requests) || data != 6*20000 {
		t.Fatalf("SETTINGS %v, %d header blocks, %d DATA bytes", settings, len(headers), data)
	}
	for i, fields := range headers {
		if prio[i] != p.h2.priority {
			t.Errorf("request %d: priority %+v", i, prio[i])
		}
		var names []string
		for _, f := range fields {
			names = append(names, f.Name)
		}
		want := []string{":method", ":path", ":authority", ":scheme", "user-agent", "accept", "x-other", "cookie"}
		if i == 2 {
			want = append(want, "x-big")
		}
		if !slices.Equal(names, want) {
			t.Errorf("request %d: fields %v, want %v", i, names, want)
		}
		if got := slices.IndexFunc(fields, func(f hpack.HeaderField) bool { return f.Name == "cookie" }); !fields[got].Sensitive {
			t.Errorf("request %d: cookie lost its never-indexed mark", i)
		}
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		split := &captureConn{}
		w := newH2Wire(split, p)
		for rest := stream; len(rest) > 0; {
			n := min(len(rest), 1+rnd.IntN(20000))
			if rnd.IntN(4) == 0 {
				n = min(len(rest), 1+rnd.IntN(12))
			}
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if !bytes.Equal(split.out.Bytes(), whole.out.Bytes()) {
			t.Fatal("the rewrite depends on how the writes are split")
		}
	}
}

// A stream that is not HTTP/2 fails the write, never panics.
func TestH2WireMalformed(t *testing.T) {
	for _, bad := range [][]byte{
		append([]byte(http2.ClientPreface), 0, 0, 1, byte(http2.FrameContinuation), 4, 0, 0, 0, 1, 0),     // CONTINUATION first
		append([]byte(http2.ClientPreface), 0, 0, 2, byte(http2.FrameHeaders), 0x8|0x4, 0, 0, 0, 1, 9, 0), // pad past the end
		append([]byte(http2.ClientPreface), 0, 0, 1, byte(http2.FrameHeaders), 0x4, 0, 0, 0, 1, 0xff),     // bad HPACK
	} {
		if _, err := newH2Wire(&captureConn{}, findProfile("chrome136")).Write(bad); err == nil {
			t.Errorf("%x: no error", bad[len(http2.ClientPreface):])
		}
	}
}
