//go:build fastreqtest

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

func TestBenchServer(t *testing.T) {
	handles0 := handles.len()
	for _, n := range []int64{0, 5, 10, 1000, 100_000} {
		h, url, rc, e := hookBenchServerStart(n, false)
		if rc != 0 || h == 0 {
			t.Fatalf("body_len %d: fastreq_bench_server_start = %d, handle %d: %s", n, rc, h, e)
		}
		if !strings.HasPrefix(url, "http://127.0.0.1:") {
			t.Fatalf("url %q is not on 127.0.0.1", url)
		}
		want := benchBody(int(n))
		if n >= 10 && (!bytes.HasPrefix(want, []byte(`{"pad":"`)) || !bytes.HasSuffix(want, []byte(`"}`))) {
			t.Fatalf("body of %d bytes is not JSON: %q", n, want[:20])
		}

		// HTTP/1.1, any path and method.
		for _, path := range []string{"/", "/json", "/a/b?c=d"} {
			for _, method := range []string{"GET", "POST"} {
				req, _ := http.NewRequest(method, url+path, strings.NewReader("x"))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.ProtoMajor != 1 || !bytes.Equal(body, want) {
					t.Fatalf("%s %s: %s %s, %d bytes, want 200 HTTP/1.1 and %d bytes", method, path, resp.Status, resp.Proto, len(body), n)
				}
			}
		}

		// h2c with prior knowledge.
		h2c := &http.Client{Transport: &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			},
		}}
		resp, err := h2c.Get(url + "/h2c")
		if err != nil {
			t.Fatalf("h2c: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !bytes.Equal(body, want) {
			t.Fatalf("h2c: %s %s, %d bytes", resp.Status, resp.Proto, len(body))
		}
		h2c.CloseIdleConnections()

		if got := handles.len(); got != handles0+1 {
			t.Fatalf("%d live handles with one server, want %d", got, handles0+1)
		}
		if rc := hookBenchServerStop(h); rc != 0 {
			t.Fatalf("fastreq_bench_server_stop = %d", rc)
		}
		if rc := hookBenchServerStop(h); rc != -2 {
			t.Fatalf("second fastreq_bench_server_stop = %d, want FASTREQ_EBADHANDLE", rc)
		}
		if rc := hookClientClose(h); rc != -2 {
			t.Fatalf("fastreq_client_close of a stopped server = %d, want FASTREQ_EBADHANDLE", rc)
		}
		c := &http.Client{Timeout: 2 * time.Second}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			t.Fatalf("the server still answers after stop")
		}
	}
	if got := handles.len(); got != handles0 {
		t.Fatalf("%d live handles after every server stopped, want %d", got, handles0)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestBenchServerBadArguments(t *testing.T) {
	for _, n := range []int64{-1, maxBenchBody + 1} {
		if _, _, rc, e := hookBenchServerStart(n, false); rc != -1 || parseErr(t, e).Field != "body_len" {
			t.Errorf("body_len %d: rc %d, error %s; want FASTREQ_EINVAL naming body_len", n, rc, e)
		}
	}
	if _, url, rc, _ := hookBenchServerStart(1, true); rc != -1 || url != "" {
		t.Errorf("NULL server_out: rc %d, url %q; want FASTREQ_EINVAL and no URL", rc, url)
	}
	for _, h := range []uint64{0, 1 << 40} {
		if rc := hookBenchServerStop(h); rc != -2 {
			t.Errorf("fastreq_bench_server_stop(%d) = %d, want FASTREQ_EBADHANDLE", h, rc)
		}
	}
	// A client is not a server.
	c, rc, e := hookClientNew(nil)
	if rc != 0 {
		t.Fatalf("fastreq_client_new = %d: %s", rc, e)
	}
	if rc := hookBenchServerStop(c); rc != -2 {
		t.Errorf("fastreq_bench_server_stop(client) = %d, want FASTREQ_EBADHANDLE", rc)
	}
	hookClientClose(c)
}
