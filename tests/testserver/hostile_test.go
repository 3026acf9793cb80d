package testserver

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// plainClient never reuses a connection and never decodes bodies itself.
func plainClient(t *testing.T) *http.Client {
	tr := &http.Transport{DisableKeepAlives: true, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func TestZerosChecksums(t *testing.T) {
	for _, n := range []int64{0, 1, 1000, bombBlock - 1, bombBlock, bombBlock + 1, 3*bombBlock + 12345, 7 * bombBlock} {
		zeros := make([]byte, n)
		if got, want := ZerosCRC32(n), crc32.ChecksumIEEE(zeros); got != want {
			t.Errorf("ZerosCRC32(%d) = %08x, want %08x", n, got, want)
		}
		var a uint32 = 1
		var b uint32
		for range zeros {
			b = (b + a) % 65521
		}
		if got, want := ZerosAdler32(n), b<<16|a; got != want {
			t.Errorf("ZerosAdler32(%d) = %08x, want %08x", n, got, want)
		}
	}
}

// TestBombsDecode checks that bombs are valid streams (the readers verify
// the trailers) of exactly size zeros.
func TestBombsDecode(t *testing.T) {
	c := plainClient(t)
	for _, coding := range []string{"gzip", "deflate"} {
		for _, size := range []int64{0, 1, bombBlock, 3*bombBlock + 777, 70 * bombBlock} {
			t.Run(fmt.Sprintf("%s-%d", coding, size), func(t *testing.T) {
				resp, err := c.Get(fmt.Sprintf("%s/x/bomb/%s?size=%d", srv.HTTPURL, coding, size))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if ce := resp.Header.Get("Content-Encoding"); ce != coding || resp.ContentLength != -1 {
					t.Fatalf("Content-Encoding %q, Content-Length %d", ce, resp.ContentLength)
				}
				var r io.Reader
				if coding == "gzip" {
					zr, err := gzip.NewReader(resp.Body)
					if err != nil {
						t.Fatal(err)
					}
					zr.Multistream(false)
					r = zr
				} else {
					zr, err := zlib.NewReader(resp.Body)
					if err != nil {
						t.Fatal(err)
					}
					r = zr
				}
				var n int64
				buf := make([]byte, 256<<10)
				for {
					k, err := r.Read(buf)
					if bytes.ContainsFunc(buf[:k], func(r rune) bool { return r != 0 }) {
						t.Fatalf("non-zero byte near offset %d", n)
					}
					n += int64(k)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("after %d bytes: %v", n, err)
					}
				}
				if n != size {
					t.Fatalf("decoded %d bytes, want %d", n, size)
				}
				if rest, _ := io.ReadAll(resp.Body); len(rest) != 0 {
					t.Fatalf("%d bytes after the compressed stream", len(rest))
				}
			})
		}
	}
}

// TestBombIsCheap: 10 GiB decoded is about 10 MB on the wire.
func TestBombIsCheap(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 10 MB")
	}
	resp, err := plainClient(t).Get(srv.HTTPURL + "/x/bomb/gzip?size=" + fmt.Sprint(int64(10)<<30))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if n > 16<<20 {
		t.Fatalf("10 GiB bomb is %d bytes compressed", n)
	}
	t.Logf("10 GiB bomb: %d bytes compressed, served in %v", n, time.Since(start))
}

func TestEndless(t *testing.T) {
	resp, err := plainClient(t).Get(srv.HTTPURL + "/x/endless")
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != -1 {
		t.Fatalf("Content-Length %d", resp.ContentLength)
	}
	got, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	resp.Body.Close()
	if err != nil || len(got) != 8<<20 {
		t.Fatalf("read %d bytes: %v", len(got), err)
	}
	if !bytes.Equal(got[:1000], PatternBytes(1000)) {
		t.Fatal("not the pattern")
	}
}

func TestDropAfterReadAndCount(t *testing.T) {
	key := uniqueKey("drop")
	c := plainClient(t)
	for i := 0; i < 2; i++ {
		resp, err := c.Post(srv.HTTPURL+"/x/drop-after-read?key="+key, "text/plain", strings.NewReader("payload"))
		if err == nil {
			resp.Body.Close()
			t.Fatal("got a response")
		}
	}
	_, body := get(t, c, srv.HTTPAltURL+"/x/count?key="+key)
	var got struct {
		Key   string `json:"key"`
		Count int    `json:"count"`
	}
	decodeJSON(t, body, &got)
	if got.Key != key || got.Count != 2 || srv.Hits(key) != 2 {
		t.Fatalf("count %+v, Hits %d", got, srv.Hits(key))
	}
}

// TestCrossOrigin: the second port and /redirect-to across ports.
func TestCrossOrigin(t *testing.T) {
	if srv.HTTPAltURL == srv.HTTPURL {
		t.Fatal("one port for both plain servers")
	}
	c := plainClient(t)
	target := srv.HTTPAltURL + "/headers"
	_, body := get(t, c, srv.HTTPURL+"/redirect-to?status_code=302&url="+target)
	var got struct{ Headers map[string][]string }
	decodeJSON(t, body, &got)
	if h := got.Headers["Host"]; len(h) != 1 || "http://"+h[0] != srv.HTTPAltURL {
		t.Fatalf("Host %v, want %s", h, srv.HTTPAltURL)
	}
}

func TestManyHosts(t *testing.T) {
	c := plainClient(t)
	before := srv.ManyHostsStats()
	for _, ip := range []string{"127.0.0.1", "127.0.1.1", "127.0.250.3", "127.9.8.7"} {
		_, body := get(t, c, srv.ManyHostURL(ip)+"/headers")
		var got struct{ Headers map[string][]string }
		decodeJSON(t, body, &got)
		if h := got.Headers["Host"]; len(h) != 1 || "http://"+h[0] != srv.ManyHostURL(ip) {
			t.Fatalf("Host %v for %s", h, ip)
		}
	}
	// Hold one connection open and see it counted.
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.5.5", fmt.Sprint(srv.ManyHostsPort)))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /x/many-hosts/stats HTTP/1.1\r\nHost: 127.0.5.5\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	var st ConnStats
	b, _ := io.ReadAll(resp.Body)
	decodeJSON(t, b, &st)
	if st.Accepted < before.Accepted+5 || st.Open < 1 {
		t.Fatalf("stats %+v (before %+v)", st, before)
	}
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.ManyHostsStats().Open > before.Open && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := srv.ManyHostsStats(); st.Open != before.Open {
		t.Fatalf("open %d after closing, want %d", st.Open, before.Open)
	}
}

func TestSilentServers(t *testing.T) {
	for _, u := range []string{srv.SilentURL, srv.SilentReadURL} {
		c := &http.Client{Timeout: 300 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
		start := time.Now()
		resp, err := c.Get(u + "/anything")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s answered", u)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("%s: %v, want a timeout", u, err)
		}
		if el := time.Since(start); el > 2*time.Second {
			t.Fatalf("%s: took %v", u, el)
		}
	}
}

func TestClosedAndBlackhole(t *testing.T) {
	if srv.ClosedURL == "" || srv.BlackholeURL == "" {
		t.Skip("no raw sockets here")
	}
	for i := 0; i < 3; i++ {
		_, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.ClosedURL, "http://"), time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("closed port: %v, want connection refused", err)
		}
	}
	start := time.Now()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.BlackholeURL, "http://"), 300*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatal("connected to the blackhole")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("blackhole: %v after %v, want a connect timeout", err, time.Since(start))
	}
}

// TestSpaceInQuery: go-httpbin takes a percent-encoded space in names and
// values of the query.
func TestSpaceInQuery(t *testing.T) {
	_, body := get(t, plainClient(t), srv.HTTPURL+"/get?a%20b=c%20d")
	var got struct{ Args map[string][]string }
	decodeJSON(t, body, &got)
	if v := got.Args["a b"]; len(v) != 1 || v[0] != "c d" {
		t.Fatalf("args %v", got.Args)
	}
}

// TestHostileCloseEndsEverything: Close ends held silent connections,
// bombs and endless bodies being read.
func TestHostileCloseEndsEverything(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	for _, u := range []string{s.SilentURL, s.SilentReadURL} {
		c, err := net.Dial("tcp", strings.TrimPrefix(u, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		held = append(held, c)
	}
	tr := &http.Transport{DisableKeepAlives: true, DisableCompression: true}
	defer tr.CloseIdleConnections()
	errs := make(chan error, 2)
	for _, u := range []string{s.HTTPURL + "/x/endless", s.ManyHostURL("127.0.0.9") + "/x/bomb/gzip?size=" + fmt.Sprint(int64(MaxBomb))} {
		resp, err := (&http.Client{Transport: tr}).Get(u)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			_, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			errs <- err
		}()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("Close took %v", el)
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err == nil {
			t.Error("a body ended cleanly after Close")
		}
	}
	for _, c := range held {
		// EOF, or a reset when the request was never read.
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("silent connection not closed by Close: %v", err)
		}
		c.Close()
	}
}
