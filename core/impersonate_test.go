package core

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	utls "github.com/bogdanfinn/utls"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"
)

// clientHello is what a fingerprint is made of, GREASE values included
// as sent (fingerprint drops them).
type clientHello struct {
	serverName string
	ciphers    []uint16
	extensions []uint16
	alpn       []string
	versions   []uint16
	sigAlgs    []uint16
	curves     []uint16
	keyShares  []uint16 // groups (parseClientHello only)
}

// fingerprint is a ClientHello's JA4 and the readable lists it hashes:
// ciphers and extensions sorted, without GREASE values (0x?a?a).
type fingerprint struct {
	JA4        string
	Ciphers    string
	Extensions string // all but GREASE, sorted (JA4 also leaves out SNI and ALPN)
	SigAlgs    string // in order
	ALPN       string
	Curves     string // in order
}

func isGREASE(v uint16) bool { return v&0x0f0f == 0x0a0a && v>>8 == v&0xff }

func hexList(vs []uint16, sorted bool) string {
	var out []string
	for _, v := range vs {
		if !isGREASE(v) {
			out = append(out, fmt.Sprintf("%04x", v))
		}
	}
	if sorted {
		slices.Sort(out)
	}
	return strings.Join(out, ",")
}

func sha12(s string) string {
	if s == "" {
		return "000000000000"
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:12]
}

func (h clientHello) fingerprint() fingerprint {
	f := fingerprint{
		Ciphers:    hexList(h.ciphers, true),
		Extensions: hexList(h.extensions, true),
		SigAlgs:    hexList(h.sigAlgs, false),
		ALPN:       strings.Join(h.alpn, ","),
		Curves:     hexList(h.curves, false),
	}
	version := "00"
	for _, v := range h.versions {
		switch {
		case isGREASE(v):
		case v == tls.VersionTLS13:
			version = "13"
		case v == tls.VersionTLS12 && version != "13":
			version = "12"
		}
	}
	sni := "i"
	var exts []uint16
	for _, e := range h.extensions {
		switch {
		case isGREASE(e):
			continue
		case e == 0x0000:
			sni = "d"
		}
		if e != 0x0000 && e != 0x0010 {
			exts = append(exts, e)
		}
	}
	alpn := "00"
	if len(h.alpn) > 0 && h.alpn[0] != "" {
		a := h.alpn[0]
		alpn = a[:1] + a[len(a)-1:]
	}
	nCiphers := len(strings.Split(f.Ciphers, ","))
	nExts := len(strings.Split(f.Extensions, ","))
	c := hexList(exts, true)
	if f.SigAlgs != "" {
		c += "_" + f.SigAlgs
	}
	f.JA4 = fmt.Sprintf("t%s%s%02d%02d%s_%s_%s", version, sni, nCiphers, nExts, alpn, sha12(f.Ciphers), sha12(c))
	return f
}

// parseClientHello reads a ClientHello handshake message (with its 4-byte
// header), as utls marshals it.
func parseClientHello(t *testing.T, raw []byte) clientHello {
	t.Helper()
	var h clientHello
	fail := func() { t.Fatalf("malformed ClientHello (%d bytes)", len(raw)) }
	p := raw
	take := func(n int) []byte {
		if len(p) < n {
			fail()
		}
		b := p[:n]
		p = p[n:]
		return b
	}
	u16 := func(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
	u16s := func(b []byte) []uint16 {
		var out []uint16
		for ; len(b) >= 2; b = b[2:] {
			out = append(out, u16(b))
		}
		return out
	}
	take(4)  // type, length
	take(2)  // legacy version
	take(32) // random
	take(int(take(1)[0]))
	h.ciphers = u16s(take(int(u16(take(2)))))
	take(int(take(1)[0])) // compression methods
	exts := take(int(u16(take(2))))
	for len(exts) >= 4 {
		typ, n := u16(exts), int(u16(exts[2:]))
		body := exts[4 : 4+n]
		exts = exts[4+n:]
		h.extensions = append(h.extensions, typ)
		switch typ {
		case 0x0000: // server_name: list len, type, name len, name
			h.serverName = string(body[5:])
		case 0x000a: // supported_groups
			h.curves = u16s(body[2:])
		case 0x000d: // signature_algorithms
			h.sigAlgs = u16s(body[2:])
		case 0x002b: // supported_versions
			h.versions = u16s(body[1:])
		case 0x0033: // key_share: list len, then group, len, data
			for b := body[2:]; len(b) >= 4; b = b[4+int(u16(b[2:])):] {
				h.keyShares = append(h.keyShares, u16(b))
			}
		case 0x0010: // ALPN
			for b := body[2:]; len(b) > 0; b = b[1+int(b[0]):] {
				h.alpn = append(h.alpn, string(b[1:1+int(b[0])]))
			}
		}
	}
	return h
}

// specHello is the ClientHello utls builds from the profile's spec for
// serverName (with ALPN http/1.1 alone when h1Only), without sending it.
func specHello(t *testing.T, p *profile, serverName string, h1Only bool) clientHello {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	uc := utls.UClient(a, &utls.Config{ServerName: serverName}, p.hello, false, h1Only, true)
	if err := uc.BuildHandshakeState(); err != nil {
		t.Fatalf("%s: BuildHandshakeState: %v", p.name, err)
	}
	return parseClientHello(t, uc.HandshakeState.Hello.Raw)
}

// helloServer is an HTTPS server (a certificate for localhost from its
// own CA) that records the ClientHello of every
// connection and answers with the request's User-Agent and protocol.
type helloServer struct {
	URL    string // https://localhost:port
	CAFile string

	h1Only atomic.Bool // answer ALPN with http/1.1 only from now on

	mu     sync.Mutex
	hellos []clientHello
	srv    *http.Server
}

type helloReply struct {
	UA    string `json:"ua"`
	Proto string `json:"proto"`
	Echo  string `json:"echo"` // the X-Echo header
	Body  int    `json:"body"` // the request body's length
}

func startHelloServer(t *testing.T, h2 bool, edit ...func(*http.Server)) *helloServer {
	t.Helper()
	cert, caFile := testCertificate(t)
	s := &helloServer{CAFile: caFile}
	base := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	h1 := base.Clone()
	h1.NextProtos = []string{"http/1.1"}
	if !h2 {
		s.h1Only.Store(true)
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(info *tls.ClientHelloInfo) (*tls.Config, error) {
		h := clientHello{serverName: info.ServerName, ciphers: info.CipherSuites, extensions: info.Extensions,
			alpn: info.SupportedProtos, versions: info.SupportedVersions}
		for _, c := range info.SupportedCurves {
			h.curves = append(h.curves, uint16(c))
		}
		for _, a := range info.SignatureSchemes {
			h.sigAlgs = append(h.sigAlgs, uint16(a))
		}
		s.mu.Lock()
		s.hellos = append(s.hellos, h)
		s.mu.Unlock()
		if s.h1Only.Load() {
			return h1, nil
		}
		return base, nil
	}
	s.srv = &http.Server{
		TLSConfig: cfg,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			json.NewEncoder(w).Encode(helloReply{UA: r.UserAgent(), Proto: r.Proto, Echo: r.Header.Get("X-Echo"), Body: int(n)})
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	for _, e := range edit {
		e(s.srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.URL = "https://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	go s.srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { s.srv.Close() })
	return s
}

// take returns the ClientHellos recorded since the last call.
func (s *helloServer) take() []clientHello {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hellos
	s.hellos = nil
	return h
}

// testCertificate makes a CA and a server certificate it signed for
// localhost (not for 127.0.0.1); it returns the latter and the CA's PEM file.
func testCertificate(t *testing.T) (tls.Certificate, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "impersonate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}, caFile
}

// impersonatingClient is a test client passing for target, trusting s's CA.
func impersonatingClient(t *testing.T, s *helloServer, target string, edit func(*ClientConfig)) *Client {
	t.Helper()
	return newTestClient(t, func(cfg *ClientConfig) {
		cfg.Impersonate = target
		cfg.VerifySSL = nil
		cfg.CAFile = s.CAFile
		if edit != nil {
			edit(cfg)
		}
	})
}

// getReply runs one GET of url and decodes the server's reply.
func getReply(t *testing.T, c *Client, url string, headers map[string]string) helloReply {
	t.Helper()
	res := doReq(t, c, RequestConfig{URL: url, Headers: headers})
	if res.Error != nil {
		t.Fatalf("GET %s: %v", url, res.Error)
	}
	var r helloReply
	if err := json.Unmarshal(res.Content, &r); err != nil {
		t.Fatalf("reply %q: %v", res.Content, err)
	}
	return r
}

// goHello is the ClientHello of Go's own TLS client (the engine without
// impersonate), recorded by s.
func goHello(t *testing.T, s *helloServer) fingerprint {
	t.Helper()
	c := impersonatingClient(t, s, "", nil)
	getReply(t, c, s.URL, nil)
	hs := s.take()
	if len(hs) == 0 {
		t.Fatal("no ClientHello recorded")
	}
	return hs[0].fingerprint()
}

// TestImpersonateClientHello: for every target the server sees the
// ClientHello of utls's spec for the target's ClientHelloID (the same
// ciphers, extensions, signature algorithms, groups and ALPN), not Go's;
// the request goes over HTTP/2 with the target's User-Agent.
func TestImpersonateClientHello(t *testing.T) {
	s := startHelloServer(t, true)
	goFP := goHello(t, s)
	t.Logf("%-10s %s", "go", goFP.JA4)
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			c := impersonatingClient(t, s, p.name, nil)
			if got := c.Impersonating(); got != p.name {
				t.Errorf("Impersonating() = %q", got)
			}
			r := getReply(t, c, s.URL, nil)
			if r.Proto != "HTTP/2.0" || r.UA != p.userAgent() {
				t.Errorf("server saw %s with User-Agent %q; want HTTP/2.0 and %q", r.Proto, r.UA, p.userAgent())
			}
			hs := s.take()
			if len(hs) != 1 {
				t.Fatalf("%d handshakes for one request, want 1", len(hs))
			}
			got := hs[0].fingerprint()
			want := specHello(t, p, "localhost", false).fingerprint()
			if got != want {
				t.Errorf("fingerprint\n got %+v\nwant %+v", got, want)
			}
			if got.JA4 == goFP.JA4 || got.Extensions == goFP.Extensions {
				t.Errorf("fingerprint is Go's: %+v", got)
			}
			if hs[0].serverName != "localhost" || !slices.Equal(hs[0].alpn, []string{"h2", "http/1.1"}) {
				t.Errorf("SNI %q, ALPN %q; want localhost and h2,http/1.1", hs[0].serverName, hs[0].alpn)
			}
			t.Logf("%-10s %s (%s)", p.name, got.JA4, p.hello.Str())
		})
	}
}

// browserHellos are the ClientHellos of the browsers themselves, from
// curl-impersonate's captures (github.com/lexiforest/curl-impersonate,
// tests/signatures: chrome_131.0.6778.86, chrome_133.0.6943.55,
// chrome_136.0.7103.93, safari_18.0_macOS, safari_18.4_macOS,
// firefox_133.0.3_linux, firefox_135.0.1_linux), GREASE left out:
// cipher suites, extensions (sorted), groups, key share groups and
// signature algorithms (in order). padding (21) is left out: whether a
// ClientHello is padded depends on its length, and so on the server name.
var browserHellos = map[string][5]string{
	"chrome131": {"4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53",
		"0-5-10-11-13-16-18-23-27-35-43-45-51-17513-65037-65281", "4588-29-23-24", "4588-29",
		"1027-2052-1025-1283-2053-1281-2054-1537"},
	"chrome133a": {"4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53",
		"0-5-10-11-13-16-18-23-27-35-43-45-51-17613-65037-65281", "4588-29-23-24", "4588-29",
		"1027-2052-1025-1283-2053-1281-2054-1537"},
	"chrome136": {"4865-4866-4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53",
		"0-5-10-11-13-16-18-23-27-35-43-45-51-17613-65037-65281", "4588-29-23-24", "4588-29",
		"1027-2052-1025-1283-2053-1281-2054-1537"},
	"safari180": {"4865-4866-4867-49196-49195-52393-49200-49199-52392-49162-49161-49172-49171-157-156-53-47-49160-49170-10",
		"0-5-10-11-13-16-18-23-27-43-45-51-65281", "29-23-24-25", "29",
		"1027-2052-1025-1283-2053-2053-1281-2054-1537-513"},
	"safari184": {"4865-4866-4867-49196-49195-52393-49200-49199-52392-49162-49161-49172-49171-157-156-53-47-49160-49170-10",
		"0-5-10-11-13-16-18-23-27-43-45-51-65281", "29-23-24-25", "29",
		"1027-2052-1025-1283-2053-2053-1281-2054-1537-513"},
	"firefox133": {"4865-4867-4866-49195-49199-52393-52392-49196-49200-49162-49161-49171-49172-156-157-47-53",
		"0-5-10-11-13-16-23-27-28-34-35-43-45-51-65037-65281", "4588-29-23-24-25-256-257", "4588-29-23",
		"1027-1283-1539-2052-2053-2054-1025-1281-1537-515-513"},
	"firefox135": {"4865-4867-4866-49195-49199-52393-52392-49196-49200-49162-49161-49171-49172-156-157-47-53",
		"0-5-10-11-13-16-18-23-27-28-34-35-43-45-51-65037-65281", "4588-29-23-24-25-256-257", "4588-29-23",
		"1027-1283-1539-2052-2053-2054-1025-1281-1537-515-513"},
}

// Every target's ClientHello has the browser's cipher suites, extensions,
// groups, key shares and signature algorithms, as captured.
func TestImpersonateMatchesBrowserCaptures(t *testing.T) {
	dec := func(vs []uint16, sorted bool) string {
		var out []int
		for _, v := range vs {
			if !isGREASE(v) && v != 21 {
				out = append(out, int(v))
			}
		}
		if sorted {
			slices.Sort(out)
		}
		return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(out)), "-"), "[]")
	}
	for _, p := range profiles {
		want, ok := browserHellos[p.name]
		if !ok {
			t.Errorf("%s: no capture to check against", p.name)
			continue
		}
		for range 3 { // Chrome shuffles its extensions per handshake
			h := specHello(t, p, "example.com", false)
			got := [5]string{dec(h.ciphers, false), dec(h.extensions, true), dec(h.curves, false),
				dec(h.keyShares, false), dec(h.sigAlgs, false)}
			if got != want {
				t.Errorf("%s: ClientHello\n got %q\nwant %q", p.name, got, want)
			}
		}
	}
}

// An https server without h2: the same ClientHello (ALPN offers h2), and
// the request goes over HTTP/1.1.
func TestImpersonateHTTP1Server(t *testing.T) {
	s := startHelloServer(t, false)
	for _, name := range []string{"chrome131", "safari180", "firefox133"} {
		p := findProfile(name)
		c := impersonatingClient(t, s, name, nil)
		for i := 0; i < 2; i++ { // the second reuses the connection
			if r := getReply(t, c, s.URL, nil); r.Proto != "HTTP/1.1" || r.UA != p.userAgent() {
				t.Errorf("%s: server saw %s, User-Agent %q", name, r.Proto, r.UA)
			}
		}
		hs := s.take()
		if len(hs) != 1 {
			t.Fatalf("%s: %d handshakes for two requests in a row, want 1", name, len(hs))
		}
		if got, want := hs[0].fingerprint(), specHello(t, p, "localhost", false).fingerprint(); got != want {
			t.Errorf("%s: fingerprint\n got %+v\nwant %+v", name, got, want)
		}
	}
}

// http2=false offers http/1.1 alone (the one change to the ClientHello);
// the http2 backend fails on a server without h2 as it does without
// impersonate.
func TestImpersonateProtocols(t *testing.T) {
	s := startHelloServer(t, true)
	p := findProfile("chrome133a")
	c := impersonatingClient(t, s, p.name, func(cfg *ClientConfig) { cfg.HTTP2 = Bool(false) })
	if r := getReply(t, c, s.URL, nil); r.Proto != "HTTP/1.1" {
		t.Errorf("http2=false: server saw %s", r.Proto)
	}
	hs := s.take()
	if len(hs) != 1 || !slices.Equal(hs[0].alpn, []string{"http/1.1"}) {
		t.Fatalf("http2=false: hellos %+v; want one offering http/1.1", hs)
	}
	if got, want := hs[0].fingerprint(), specHello(t, p, "localhost", true).fingerprint(); got != want {
		t.Errorf("http2=false: fingerprint\n got %+v\nwant %+v", got, want)
	}

	c = impersonatingClient(t, s, p.name, func(cfg *ClientConfig) { cfg.Backend = "http2" })
	if r := getReply(t, c, s.URL, nil); r.Proto != "HTTP/2.0" {
		t.Errorf("backend http2: server saw %s", r.Proto)
	}
	h1 := startHelloServer(t, false)
	c = impersonatingClient(t, h1, p.name, func(cfg *ClientConfig) { cfg.Backend = "http2" })
	res := doReq(t, c, RequestConfig{URL: h1.URL})
	if res.Error == nil || res.Error.Kind != KindTLS || !strings.Contains(res.Error.Message, "HTTP/2") {
		t.Errorf("backend http2 on a server without h2: %v; want a tls error about HTTP/2", res.Error)
	}
}

// A caller's User-Agent wins over the target's, from the request or the
// client's headers.
func TestImpersonateCallerUserAgent(t *testing.T) {
	s := startHelloServer(t, true)
	c := impersonatingClient(t, s, "firefox135", func(cfg *ClientConfig) {
		cfg.Headers = map[string]string{"User-Agent": "client-ua"}
	})
	if r := getReply(t, c, s.URL, nil); r.UA != "client-ua" {
		t.Errorf("client header: User-Agent %q", r.UA)
	}
	if r := getReply(t, c, s.URL, map[string]string{"user-agent": "request-ua"}); r.UA != "request-ua" {
		t.Errorf("request header: User-Agent %q", r.UA)
	}
	c = impersonatingClient(t, s, "safari184", func(cfg *ClientConfig) { cfg.UserAgents = []string{"rotated"} })
	if r := getReply(t, c, s.URL, nil); r.UA != findProfile("safari184").userAgent() {
		t.Errorf("user_agents with impersonate: User-Agent %q; want the target's", r.UA)
	}
}

// "random" picks a target per client: several clients pass for several
// browsers, each consistently (ClientHello and User-Agent).
func TestImpersonateRandom(t *testing.T) {
	s := startHelloServer(t, true)
	seen := map[string]bool{}
	for i := 0; i < 12; i++ {
		c := impersonatingClient(t, s, "random", nil)
		name := c.Impersonating()
		p := findProfile(name)
		if p == nil {
			t.Fatalf("random picked %q", name)
		}
		seen[name] = true
		if r := getReply(t, c, s.URL, nil); r.UA != p.userAgent() {
			t.Errorf("client %d (%s): User-Agent %q", i, name, r.UA)
		}
		hs := s.take()
		if len(hs) != 1 {
			t.Fatalf("%d handshakes", len(hs))
		}
		if got, want := hs[0].fingerprint(), specHello(t, p, "localhost", false).fingerprint(); got != want {
			t.Errorf("client %d (%s): fingerprint\n got %+v\nwant %+v", i, name, got, want)
		}
	}
	if len(seen) < 2 {
		t.Errorf("12 clients with random all passed for %v", seen)
	}
}

// Through the HTTP proxy (CONNECT, with credentials) and the SOCKS5
// proxy the target server still sees the target's ClientHello; a proxy
// that refuses is a proxy error.
func TestImpersonateThroughProxies(t *testing.T) {
	s := startHelloServer(t, true)
	p := findProfile("chrome136")
	want := specHello(t, p, "localhost", false).fingerprint()
	for _, tc := range []struct {
		name, proxy string
		count       func() int64
	}{
		{"http", ts.ProxyURL, ts.ProxyRequests},
		{"socks5", ts.SOCKS5URL, ts.SOCKS5Tunnels},
	} {
		c := impersonatingClient(t, s, p.name, func(cfg *ClientConfig) { cfg.Proxies = []string{tc.proxy} })
		before := tc.count()
		if r := getReply(t, c, s.URL, nil); r.Proto != "HTTP/2.0" || r.UA != p.userAgent() {
			t.Errorf("%s proxy: server saw %s, User-Agent %q", tc.name, r.Proto, r.UA)
		}
		if n := tc.count() - before; n != 1 {
			t.Errorf("%s proxy: %d tunnels, want 1", tc.name, n)
		}
		hs := s.take()
		if len(hs) != 1 {
			t.Fatalf("%s proxy: %d handshakes", tc.name, len(hs))
		}
		if got := hs[0].fingerprint(); got != want {
			t.Errorf("%s proxy: fingerprint\n got %+v\nwant %+v", tc.name, got, want)
		}
	}

	c := impersonatingClient(t, s, p.name, func(cfg *ClientConfig) { cfg.Proxies = []string{ts.ProxyAddr} })
	res := doReq(t, c, RequestConfig{URL: s.URL})
	if res.Error == nil || res.Error.Kind != KindProxy || !strings.Contains(res.Error.Message, "407") {
		t.Errorf("proxy without credentials: %v; want a proxy error with 407", res.Error)
	}
	c = impersonatingClient(t, s, p.name, func(cfg *ClientConfig) { cfg.Proxies = []string{strings.TrimPrefix(ts.ClosedURL, "http://")} })
	if res := doReq(t, c, RequestConfig{URL: s.URL}); res.Error == nil || res.Error.Kind != KindProxy {
		t.Errorf("proxy that refuses connections: %v; want a proxy error", res.Error)
	}
}

// Certificates are checked against ca_file (or the system's roots), or
// not with verify_ssl=false; the handshake is bounded by connect_timeout.
func TestImpersonateVerifyAndTimeout(t *testing.T) {
	s := startHelloServer(t, true)
	c := newTestClient(t, func(cfg *ClientConfig) { cfg.Impersonate = "chrome131"; cfg.VerifySSL = nil })
	res := doReq(t, c, RequestConfig{URL: s.URL})
	var unknown x509.UnknownAuthorityError
	if res.Error == nil || res.Error.Kind != KindTLS || !errors.As(res.Error, &unknown) {
		t.Errorf("unknown CA: %v; want a tls error (unknown authority)", res.Error)
	}
	if r := doReq(t, c, RequestConfig{URL: s.URL, VerifySSL: Bool(false)}); r.Error != nil {
		t.Errorf("verify_ssl=false: %v", r.Error)
	}
	// The certificate is for localhost, not for 127.0.0.1.
	c = impersonatingClient(t, s, "chrome131", nil)
	other := strings.Replace(s.URL, "localhost", "127.0.0.1", 1)
	if r := doReq(t, c, RequestConfig{URL: other}); r.Error == nil || r.Error.Kind != KindTLS {
		t.Errorf("wrong host: %v; want a tls error", r.Error)
	}

	silent := strings.Replace(ts.SilentURL, "http://", "https://", 1)
	c = newTestClient(t, func(cfg *ClientConfig) { cfg.Impersonate = "safari180"; cfg.ConnectTimeout = 0.3 })
	start := time.Now()
	res = doReq(t, c, RequestConfig{URL: silent})
	if res.Error == nil || res.Error.Kind != KindTimeout || !strings.Contains(res.Error.Message, "connect_timeout") {
		t.Errorf("silent server: %v; want a timeout naming connect_timeout", res.Error)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the handshake with a silent server took %v with connect_timeout 0.3 s", d)
	}
}

// Concurrent first requests to a server share one handshake to learn its
// protocol; a server that later answers with the other protocol gets the
// request on that one.
func TestImpersonateALPNLearning(t *testing.T) {
	s := startHelloServer(t, true)
	c := impersonatingClient(t, s, "chrome131", func(cfg *ClientConfig) { cfg.Concurrency = 50 })
	reqs := make([]RequestConfig, 50)
	for i := range reqs {
		reqs[i] = RequestConfig{URL: s.URL}
	}
	b, err := c.Submit(testCtx(t), reqs, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b.Wait() {
		if r.Error != nil || !strings.Contains(string(r.Content), "HTTP/2.0") {
			t.Fatalf("request %d: %v %s", r.Index, r.Error, r.Content)
		}
	}
	if n := len(s.take()); n != 1 {
		t.Errorf("%d handshakes for 50 concurrent requests over HTTP/2, want 1", n)
	}

	s.h1Only.Store(true)
	c.backend.Close() // the next request needs a new connection
	c = impersonatingClient(t, s, "chrome131", nil)
	if r := getReply(t, c, s.URL, nil); r.Proto != "HTTP/1.1" {
		t.Fatalf("server now without h2: %s", r.Proto)
	}
	s.h1Only.Store(false)
	c.backend.closeIdle()
	if r := getReply(t, c, s.URL, nil); r.Proto != "HTTP/2.0" {
		t.Errorf("server with h2 again: %s; want the request moved to HTTP/2", r.Proto)
	}
	if r := doReq(t, c, RequestConfig{URL: s.URL, Method: "POST", Content: []byte("x")}); r.Error != nil {
		t.Errorf("POST: %v", r.Error)
	}
}

// An unknown target is a configuration error naming the field and every
// known target; names are case-insensitive; "chrome", "safari" and
// "firefox" are the newest of each.
func TestImpersonateTargets(t *testing.T) {
	want := []string{"chrome131", "chrome133a", "chrome136", "safari180", "safari184", "firefox133", "firefox135", "random"}
	if got := ImpersonateTargets(); !slices.Equal(got, want) {
		t.Errorf("ImpersonateTargets() = %v", got)
	}
	_, err := NewClient(ClientConfig{Impersonate: "chrome99"})
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindConfiguration || e.Field != "impersonate" {
		t.Fatalf("unknown target: %v; want a configuration error for impersonate", err)
	}
	for _, name := range want {
		if !strings.Contains(e.Message, name) {
			t.Errorf("the error %q does not list %s", e.Message, name)
		}
	}
	c, err := NewClient(ClientConfig{Impersonate: " Chrome131 "})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Config().Impersonate != "chrome131" || c.Impersonating() != "chrome131" {
		t.Errorf("Chrome131: config %q, impersonating %q", c.Config().Impersonate, c.Impersonating())
	}
	for alias, target := range map[string]string{"chrome": "chrome136", "Safari": "safari184", "firefox": "firefox135"} {
		cfg := ClientConfig{Impersonate: alias}
		if err := cfg.normalize(); err != nil || cfg.Impersonate != target {
			t.Errorf("alias %s: %q, %v; want %s", alias, cfg.Impersonate, err, target)
		}
	}
	plain, _ := NewClient(ClientConfig{})
	defer plain.Close()
	if plain.Impersonating() != "" {
		t.Errorf("Impersonating() without impersonate = %q", plain.Impersonating())
	}
}

func TestTLSAddr(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":      "example.com:443",
		"example.com:8443": "example.com:8443",
		"[::1]":            "[::1]:443",
		"[::1]:8443":       "[::1]:8443",
		"bücher.example":   "xn--bcher-kva.example:443",
		"127.0.0.1:1":      "127.0.0.1:1",
	} {
		if got := tlsAddr(in); got != want {
			t.Errorf("tlsAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// h2Frames is what an HTTP/2 server reads from a client before a
// request: the connection's SETTINGS (in order) and WINDOW_UPDATE, and
// the request's header fields (in order) and HEADERS priority.
type h2Frames struct {
	settings     []http2.Setting
	windowUpdate uint32
	headers      []hpack.HeaderField
	priority     http2.PriorityParam
}

// akamai is the frames in the form of Akamai's HTTP/2 fingerprint:
// settings|window update|priority frames|pseudo-header order.
func (f h2Frames) akamai() string {
	var s []string
	for _, st := range f.settings {
		s = append(s, fmt.Sprintf("%d:%d", uint16(st.ID), st.Val))
	}
	return fmt.Sprintf("%s|%d|0|%s", strings.Join(s, ";"), f.windowUpdate, f.pseudo())
}

// pseudo is the order of the pseudo-header fields, as h2Profile.pseudo
// writes it.
func (f h2Frames) pseudo() string {
	var p string
	for _, h := range f.headers {
		if h.IsPseudo() {
			p += h.Name[1:2]
		}
	}
	return p
}

// names are the regular header fields' names, in order.
func (f h2Frames) names() []string {
	var n []string
	for _, h := range f.headers {
		if !h.IsPseudo() {
			n = append(n, h.Name)
		}
	}
	return n
}

// startH2Recorder is a TLS server speaking just enough HTTP/2 to answer
// each request with an empty 200, recording the frames of each request.
func startH2Recorder(t *testing.T) (url, caFile string, frames <-chan h2Frames) {
	t.Helper()
	cert, caFile := testCertificate(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan h2Frames, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
					return
				}
				fr := http2.NewFramer(c, c)
				fr.ReadMetaHeaders = hpack.NewDecoder(65536, nil)
				fr.WriteSettings()
				var got h2Frames
				for {
					f, err := fr.ReadFrame()
					if err != nil {
						return
					}
					switch f := f.(type) {
					case *http2.SettingsFrame:
						if !f.IsAck() {
							f.ForeachSetting(func(s http2.Setting) error { got.settings = append(got.settings, s); return nil })
							fr.WriteSettingsAck()
						}
					case *http2.WindowUpdateFrame:
						if f.StreamID == 0 && got.windowUpdate == 0 {
							got.windowUpdate = f.Increment
						}
					case *http2.MetaHeadersFrame:
						req := got
						req.headers = f.Fields
						req.priority = f.Priority
						var block bytes.Buffer
						hpack.NewEncoder(&block).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
						fr.WriteHeaders(http2.HeadersFrameParam{StreamID: f.StreamID, BlockFragment: block.Bytes(),
							EndHeaders: true, EndStream: true})
						out <- req
					}
				}
			}()
		}
	}()
	return "https://localhost:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port), caFile, out
}

// The HTTP/2 frames a server reads before each request are the
// browser's: its SETTINGS in its order, its connection window, its
// pseudo-header order, its headers in its order and its HEADERS
// priority; and they differ from Go's own.
func TestImpersonateHTTP2Frames(t *testing.T) {
	url, caFile, frames := startH2Recorder(t)
	get := func(target string, headers map[string]string) h2Frames {
		t.Helper()
		c := newTestClient(t, func(cfg *ClientConfig) {
			cfg.Impersonate, cfg.VerifySSL, cfg.CAFile = target, nil, caFile
		})
		for range 2 { // the second request on the same connection
			if res := doReq(t, c, RequestConfig{URL: url, Headers: headers}); res.Error != nil || res.HTTPVersion != "HTTP/2.0" {
				t.Fatalf("%s: %v %s", target, res.Error, res.HTTPVersion)
			}
		}
		first, second := <-frames, <-frames
		// (Go's own order of headers is a map's, so it varies.)
		if target != "" && (!slices.Equal(first.names(), second.names()) || first.pseudo() != second.pseudo()) {
			t.Errorf("%s: the second request's headers %v differ from the first's %v", target, second.headers, first.headers)
		}
		return first
	}
	goFrames := get("", nil)
	t.Logf("%-10s %s priority=%+v", "go", goFrames.akamai(), goFrames.priority)
	for _, p := range profiles {
		f := get(p.name, nil)
		var want []string
		for _, h := range p.headers {
			want = append(want, h[0])
		}
		switch {
		case !slices.Equal(f.settings, p.h2.settings) || f.windowUpdate != p.h2.connWindowUpdate:
			t.Errorf("%s: SETTINGS %v, WINDOW_UPDATE %d; want %v, %d", p.name, f.settings, f.windowUpdate, p.h2.settings, p.h2.connWindowUpdate)
		case f.pseudo() != p.h2.pseudo:
			t.Errorf("%s: pseudo-header order %s, want %s", p.name, f.pseudo(), p.h2.pseudo)
		case f.priority != p.h2.priority:
			t.Errorf("%s: HEADERS priority %+v, want %+v", p.name, f.priority, p.h2.priority)
		case !slices.Equal(f.names(), want):
			t.Errorf("%s: headers %v, want %v", p.name, f.names(), want)
		case f.akamai() == goFrames.akamai():
			t.Errorf("%s: fingerprint %s is Go's", p.name, f.akamai())
		}
		// The caller's headers win and keep the browser's place; others follow.
		f = get(p.name, map[string]string{"Accept": "application/json", "X-Custom": "1"})
		if i := slices.Index(f.names(), "accept"); i < 0 || f.headers[i+4].Value != "application/json" ||
			f.names()[len(f.names())-1] != "x-custom" {
			t.Errorf("%s: with caller headers: %v", p.name, f.headers)
		}
		t.Logf("%-10s %s priority=%+v headers=%v", p.name, f.akamai(), f.priority, f.names())
	}
}

// The rewritten header blocks stay valid HPACK through many requests on
// one connection, blocks longer than a frame, bodies, and a server that
// shrinks the header table.
func TestImpersonateHTTP2Rewrite(t *testing.T) {
	for _, table := range []uint32{0, 4096, 256} {
		s := startHelloServer(t, true, func(srv *http.Server) {
			if table != 0 {
				srv.HTTP2 = &http.HTTP2Config{MaxDecoderHeaderTableSize: int(table)}
			}
		})
		for _, target := range []string{"chrome136", "firefox135", "safari184"} {
			c := impersonatingClient(t, s, target, nil)
			for i := range 200 {
				echo := fmt.Sprintf("%d-%s", i, strings.Repeat("x", i%7*40))
				if i == 100 {
					echo = strings.Repeat("y", 40000) // HEADERS and CONTINUATIONs
				}
				rc := RequestConfig{URL: s.URL, Headers: map[string]string{"X-Echo": echo, fmt.Sprintf("X-N%d", i%5): "v"}}
				if i%3 == 0 {
					rc.Method, rc.Content = "POST", bytes.Repeat([]byte("b"), i*300)
				}
				res := doReq(t, c, rc)
				if res.Error != nil {
					t.Fatalf("table %d, %s, request %d: %v", table, target, i, res.Error)
				}
				var r helloReply
				if err := json.Unmarshal(res.Content, &r); err != nil || r.Echo != echo || r.Proto != "HTTP/2.0" ||
					(i%3 == 0 && r.Body != i*300) {
					t.Fatalf("table %d, %s, request %d: %+v (%v)", table, target, i, r, err)
				}
			}
		}
	}
}

// A redirect from http:// to https:// keeps impersonating, also with the
// http2 backend (whose http:// routes speak h2c): the https hop sends the
// target's ClientHello.
func TestImpersonateRedirectToHTTPS(t *testing.T) {
	s := startHelloServer(t, true)
	goFP := goHello(t, s)
	redirect := httptest.NewServer(h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.URL, http.StatusFound)
	}), &http2.Server{})) // HTTP/1.1 and h2c
	t.Cleanup(redirect.Close)
	p := findProfile("chrome136")
	for _, backend := range []string{"auto", "http2"} {
		c := impersonatingClient(t, s, p.name, func(cfg *ClientConfig) { cfg.Backend = backend })
		res := doReq(t, c, RequestConfig{URL: redirect.URL})
		if res.Error != nil || res.StatusCode != 200 {
			t.Fatalf("%s: %v, status %d", backend, res.Error, res.StatusCode)
		}
		hs := s.take()
		if len(hs) != 1 || hs[0].fingerprint().JA4 == goFP.JA4 {
			t.Errorf("%s: the https hop made %d handshakes, Go's own: %v", backend, len(hs), len(hs) == 1)
		}
	}
}
