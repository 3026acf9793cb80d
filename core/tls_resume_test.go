package core

import (
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
)

// handshakeServer is a TLS server (h2 and http/1.1 by ALPN) that counts
// its handshakes: full ones and resumed ones.
type handshakeServer struct {
	*httptest.Server
	full, resumed atomic.Int64
	caFile        string // its certificate, PEM, for verify_ssl=true
}

func newHandshakeServer(t *testing.T) *handshakeServer {
	t.Helper()
	s := &handshakeServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto-Major", strconv.Itoa(r.ProtoMajor))
		_, _ = w.Write([]byte("ok"))
	}))
	s.EnableHTTP2 = true
	s.TLS = &tls.Config{
		NextProtos: []string{"h2", "http/1.1"},
		// Called by the server on every handshake, resumed or not.
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.DidResume {
				s.resumed.Add(1)
			} else {
				s.full.Add(1)
			}
			return nil
		},
	}
	s.StartTLS()
	t.Cleanup(s.Close)
	s.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(s.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// counts returns the full and resumed handshakes so far.
func (s *handshakeServer) counts() (full, resumed int64) { return s.full.Load(), s.resumed.Load() }

// getOn makes one request and checks the HTTP version it went over.
func getOn(t *testing.T, c *Client, req RequestConfig, wantMajor string) {
	t.Helper()
	res := doReq(t, c, req)
	mustOK(t, res)
	if got := res.Headers["x-proto-major"]; got != wantMajor {
		t.Fatalf("request went over HTTP/%s, want HTTP/%s", got, wantMajor)
	}
}

// A second connection to a host the client has already talked to resumes
// the TLS session of the first, whatever the transport behind the route.
func TestTLSSessionResumption(t *testing.T) {
	cases := []struct {
		name   string
		verify bool
		edit   func(*ClientConfig)
		major  string
	}{
		{"http1", false, func(c *ClientConfig) { c.HTTP2 = ptr(false) }, "1"},
		{"auto-h2", false, nil, "2"},
		{"http2", false, func(c *ClientConfig) { c.Backend = "http2" }, "2"},
		{"http1-verified", true, func(c *ClientConfig) { c.HTTP2 = ptr(false) }, "1"},
		{"http2-verified", true, func(c *ClientConfig) { c.Backend = "http2" }, "2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newHandshakeServer(t)
			c := newTestClient(t, func(cfg *ClientConfig) {
				if tc.edit != nil {
					tc.edit(cfg)
				}
				if tc.verify {
					cfg.VerifySSL = ptr(true)
					cfg.CAFile = s.caFile
				}
			})
			for i := 0; i < 3; i++ {
				getOn(t, c, RequestConfig{URL: s.URL + "/"}, tc.major)
				c.backend.closeIdle() // the next request needs a new connection
			}
			if full, resumed := s.counts(); full != 1 || resumed != 2 {
				t.Fatalf("3 connections: %d full handshakes and %d resumed, want 1 and 2", full, resumed)
			}
		})
	}
}

// A session is never resumed through another proxy (or none): that would
// tell the server the connections are one client's.
func TestTLSSessionNotSharedAcrossProxies(t *testing.T) {
	s := newHandshakeServer(t)
	c := newTestClient(t, func(cfg *ClientConfig) { cfg.HTTP2 = ptr(false) })
	direct := RequestConfig{URL: s.URL + "/"}
	proxied := RequestConfig{URL: s.URL + "/", Proxy: ts.ProxyURL}
	steps := []struct {
		what          string
		req           RequestConfig
		full, resumed int64
	}{
		{"direct", direct, 1, 0},
		{"through the proxy, first time", proxied, 2, 0},
		{"through the proxy again", proxied, 2, 1},
		{"direct again", direct, 2, 2},
	}
	for _, st := range steps {
		getOn(t, c, st.req, "1")
		c.backend.closeIdle()
		if full, resumed := s.counts(); full != st.full || resumed != st.resumed {
			t.Fatalf("after %s: %d full handshakes and %d resumed, want %d and %d",
				st.what, full, resumed, st.full, st.resumed)
		}
	}
}
