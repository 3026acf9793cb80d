// Package testserver runs the real local servers that every fastreq test
// layer talks to: plain HTTP/1.1 + h2c (on two ports), TLS with and without
// HTTP/2, HTTP/3 over QUIC (with a TCP TLS twin on its port advertising
// it in Alt-Svc), an HTTP forward proxy and a SOCKS5 proxy, all on 127.0.0.1 and all
// serving the same handler (go-httpbin at "/" plus misbehaving endpoints
// under "/x/"); the same handler at every loopback address 127.X.Y.Z of one
// port (many hosts); and hostile addresses: one that accepts and never
// writes, one that reads requests and never answers, one whose connects
// hang, and one where nothing listens.
//
// Go tests use New in-process; other languages start
// cmd/fastreq-testserver and read the JSON line it prints (see Info).
package testserver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Options configures New. Empty addresses mean "127.0.0.1:0" (a random
// port).
type Options struct {
	HTTPAddr  string // HTTP/1.1 and h2c with prior knowledge
	TLSAddr   string // TLS, ALPN h2 and http/1.1
	TLSH1Addr string // TLS, ALPN http/1.1 only
	// H3Addr is HTTP/3 over QUIC (UDP) and, on the same port number,
	// TLS over TCP (h2 and http/1.1) answering with Alt-Svc: h3=":PORT".
	// Port 0 picks one that is free for both.
	H3Addr     string
	ProxyAddr  string // HTTP forward proxy (absolute URIs and CONNECT)
	SOCKS5Addr string // SOCKS5 proxy

	// HTTPAltAddr is a second HTTP/1.1 + h2c server (another origin for
	// cross-port redirects).
	HTTPAltAddr string
	// ManyHostsAddr is where the many-hosts server listens; empty means
	// "0.0.0.0:0". It must cover 127.0.0.0/8; connections whose source or
	// destination is not loopback are closed at once.
	ManyHostsAddr string

	// ProxyUser and ProxyPass, when ProxyUser is set, make the HTTP proxy
	// demand Basic Proxy-Authorization and answer 407 otherwise.
	ProxyUser, ProxyPass string
	// SOCKS5User and SOCKS5Pass, when SOCKS5User is set, make the SOCKS5
	// proxy demand username/password authentication (RFC 1929).
	SOCKS5User, SOCKS5Pass string

	// Dir receives the CA certificate file. Empty means a new temporary
	// directory that Close removes.
	Dir string
}

// Servers is a running set of test servers. The URL fields have no trailing
// slash.
type Servers struct {
	HTTPURL  string // http://127.0.0.1:port, HTTP/1.1 and h2c prior knowledge
	TLSURL   string // https://127.0.0.1:port, h2 and http/1.1 by ALPN
	TLSH1URL string // https://127.0.0.1:port, http/1.1 only
	// H3URL is https://127.0.0.1:port served by HTTP/3 on UDP and by
	// TLS (h2, http/1.1) on TCP, whose answers advertise the UDP side in
	// Alt-Svc (see H3Conns, StopH3).
	H3URL string

	// ProxyURL is http://user:pass@127.0.0.1:port when proxy auth is on,
	// else http://127.0.0.1:port. ProxyAddr is host:port alone, for
	// testing requests without credentials.
	ProxyURL  string
	ProxyAddr string

	// SOCKS5URL is socks5://[user:pass@]127.0.0.1:port.
	SOCKS5URL  string
	SOCKS5Addr string

	// HTTPAltURL is a second http://127.0.0.1:port serving the same
	// handler as HTTPURL: a different origin, for cross-port redirects.
	HTTPAltURL string

	// ManyHostsURL is http://127.0.0.1:port of the many-hosts server: the
	// same handler, reachable at every 127.X.Y.Z with that port (see
	// ManyHostURL); its connections are counted (ManyHostsStats and
	// /x/many-hosts/stats).
	ManyHostsURL  string
	ManyHostsPort int

	// Hostile addresses, each http://127.0.0.1:port. SilentURL accepts
	// connections and never reads or writes; SilentReadURL reads whatever
	// arrives and never answers; BlackholeURL never accepts and its accept
	// queue is full, so connecting hangs (for connect timeouts);
	// ClosedURL is a port reserved with nothing listening (refused at
	// once). BlackholeURL and ClosedURL are empty where the system lacks
	// the needed socket calls.
	SilentURL     string
	SilentReadURL string
	BlackholeURL  string
	ClosedURL     string

	CAFile   string         // PEM file of the CA that signed the TLS servers' certificate
	CAPEM    []byte         // same content as CAFile
	CertPool *x509.CertPool // pool holding only that CA

	handler *handler
	raws    []*rawServer
	sockets []*rawSocket
	proxy   *httpProxy
	socks   *socksProxy
	h3      *h3Server
	tracker *connTracker
	servers []*http.Server
	serveWG sync.WaitGroup
	tempDir string

	closeOnce sync.Once
	closeErr  error
}

// Info is the machine-readable summary of Servers; the binary prints it as
// its JSON line.
type Info struct {
	HTTPURL    string `json:"http_url"`
	TLSURL     string `json:"tls_url"`
	TLSH1URL   string `json:"tls_h1_url"`
	H3URL      string `json:"h3_url"`
	ProxyURL   string `json:"proxy_url"`
	ProxyAddr  string `json:"proxy_addr"`
	SOCKS5URL  string `json:"socks5_url"`
	SOCKS5Addr string `json:"socks5_addr"`
	CAFile     string `json:"ca_file"`

	HTTPAltURL    string `json:"http_alt_url"`
	ManyHostsURL  string `json:"many_hosts_url"`
	ManyHostsPort int    `json:"many_hosts_port"`
	SilentURL     string `json:"silent_url"`
	SilentReadURL string `json:"silent_read_url"`
	BlackholeURL  string `json:"blackhole_url"`
	ClosedURL     string `json:"closed_url"`
}

// New starts all servers and returns once every one is listening.
func New(opts Options) (s *Servers, err error) {
	s = &Servers{tracker: newConnTracker(), handler: newHandler()}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()

	certs, err := newCertBundle()
	if err != nil {
		return s, err
	}
	s.CAPEM, s.CertPool = certs.caPEM, certs.pool
	if err := s.writeCA(opts.Dir); err != nil {
		return s, err
	}

	listen := func(addr string) (net.Listener, error) {
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("testserver: listen %s: %w", addr, err)
		}
		return s.tracker.listener(ln), nil
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{certs.server}, MinVersion: tls.VersionTLS12}

	// Plain: one port answers HTTP/1.1 and prior-knowledge h2c.
	var plain, h2tls, h1tls http.Protocols
	plain.SetHTTP1(true)
	plain.SetUnencryptedHTTP2(true)
	h2tls.SetHTTP1(true)
	h2tls.SetHTTP2(true)
	h1tls.SetHTTP1(true)

	ln, err := listen(opts.HTTPAddr)
	if err != nil {
		return s, err
	}
	s.HTTPURL = "http://" + ln.Addr().String()
	s.serve(&http.Server{Handler: s.handler, Protocols: &plain}, ln, false)

	ln, err = listen(opts.TLSAddr)
	if err != nil {
		return s, err
	}
	s.TLSURL = "https://" + ln.Addr().String()
	s.serve(&http.Server{Handler: s.handler, Protocols: &h2tls, TLSConfig: tlsConf.Clone()}, ln, true)

	ln, err = listen(opts.TLSH1Addr)
	if err != nil {
		return s, err
	}
	s.TLSH1URL = "https://" + ln.Addr().String()
	s.serve(&http.Server{Handler: s.handler, Protocols: &h1tls, TLSConfig: tlsConf.Clone()}, ln, true)

	if err := s.startH3(opts.H3Addr, tlsConf, listen); err != nil {
		return s, err
	}

	ln, err = listen(opts.ProxyAddr)
	if err != nil {
		return s, err
	}
	s.ProxyAddr = ln.Addr().String()
	s.ProxyURL = proxyURL("http", s.ProxyAddr, opts.ProxyUser, opts.ProxyPass)
	s.proxy = newHTTPProxy(opts.ProxyUser, opts.ProxyPass, certs.pool, s.tracker)
	s.serve(&http.Server{Handler: s.proxy, Protocols: &h1tls}, ln, false)

	ln, err = listen(opts.SOCKS5Addr)
	if err != nil {
		return s, err
	}
	s.SOCKS5Addr = ln.Addr().String()
	s.SOCKS5URL = proxyURL("socks5", s.SOCKS5Addr, opts.SOCKS5User, opts.SOCKS5Pass)
	s.socks, err = startSOCKS5(ln, opts.SOCKS5User, opts.SOCKS5Pass, s.tracker)
	if err != nil {
		ln.Close()
		return s, err
	}

	ln, err = listen(opts.HTTPAltAddr)
	if err != nil {
		return s, err
	}
	s.HTTPAltURL = "http://" + ln.Addr().String()
	s.serve(&http.Server{Handler: s.handler, Protocols: &plain}, ln, false)

	if err := s.startHostile(opts, &plain, listen); err != nil {
		return s, err
	}
	return s, nil
}

// startHostile starts the many-hosts server and the hostile addresses.
func (s *Servers) startHostile(opts Options, plain *http.Protocols, listen func(string) (net.Listener, error)) error {
	addr := opts.ManyHostsAddr
	if addr == "" {
		addr = "0.0.0.0:0"
	}
	many, err := ListenLoopbackHosts(addr)
	if err != nil {
		return fmt.Errorf("testserver: listen %s: %w", addr, err)
	}
	many.OnAccept = s.handler.many.counted
	s.handler.many.rejected = &many.Rejected
	s.ManyHostsPort = many.Addr().(*net.TCPAddr).Port
	s.ManyHostsURL = s.ManyHostURL("127.0.0.1")
	ln := s.tracker.listener(many)
	s.serve(&http.Server{Handler: s.handler, Protocols: plain}, ln, false)

	ln, err = listen("")
	if err != nil {
		return err
	}
	s.SilentURL = "http://" + ln.Addr().String()
	s.raws = append(s.raws, startRaw(ln, nil))

	ln, err = listen("")
	if err != nil {
		return err
	}
	s.SilentReadURL = "http://" + ln.Addr().String()
	s.raws = append(s.raws, startRaw(ln, readForever))

	for _, f := range []struct {
		url  *string
		open func() (*rawSocket, error)
	}{{&s.BlackholeURL, newBlackhole}, {&s.ClosedURL, newClosedPort}} {
		rs, err := f.open()
		if errors.Is(err, errNoRawSockets) {
			continue
		}
		if err != nil {
			return err
		}
		s.sockets = append(s.sockets, rs)
		*f.url = "http://" + rs.addr
	}
	return nil
}

// ManyHostURL is the many-hosts server's URL at ip, e.g. "127.0.3.7".
func (s *Servers) ManyHostURL(ip string) string {
	return "http://" + net.JoinHostPort(ip, strconv.Itoa(s.ManyHostsPort))
}

// ManyHostsStats counts the many-hosts server's connections.
func (s *Servers) ManyHostsStats() ConnStats { return s.handler.many.stats() }

func proxyURL(scheme, addr, user, pass string) string {
	u := url.URL{Scheme: scheme, Host: addr}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

func (s *Servers) writeCA(dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "fastreq-testserver-")
		if err != nil {
			return fmt.Errorf("testserver: %w", err)
		}
		s.tempDir, dir = d, d
	}
	s.CAFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(s.CAFile, s.CAPEM, 0o644); err != nil {
		return fmt.Errorf("testserver: writing CA file: %w", err)
	}
	return nil
}

// serve runs srv on ln in the background; errors are never logged because
// tests provoke plenty of them on purpose.
func (s *Servers) serve(srv *http.Server, ln net.Listener, useTLS bool) {
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.servers = append(s.servers, srv)
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		if useTLS {
			_ = srv.ServeTLS(ln, "", "")
		} else {
			_ = srv.Serve(ln)
		}
	}()
}

// Info returns the URLs and CA path in the binary's JSON form.
func (s *Servers) Info() Info {
	return Info{
		HTTPURL:    s.HTTPURL,
		TLSURL:     s.TLSURL,
		TLSH1URL:   s.TLSH1URL,
		H3URL:      s.H3URL,
		ProxyURL:   s.ProxyURL,
		ProxyAddr:  s.ProxyAddr,
		SOCKS5URL:  s.SOCKS5URL,
		SOCKS5Addr: s.SOCKS5Addr,
		CAFile:     s.CAFile,

		HTTPAltURL:    s.HTTPAltURL,
		ManyHostsURL:  s.ManyHostsURL,
		ManyHostsPort: s.ManyHostsPort,
		SilentURL:     s.SilentURL,
		SilentReadURL: s.SilentReadURL,
		BlackholeURL:  s.BlackholeURL,
		ClosedURL:     s.ClosedURL,
	}
}

// TLSClientConfig returns a client config that trusts the servers' CA.
func (s *Servers) TLSClientConfig() *tls.Config {
	return &tls.Config{RootCAs: s.CertPool}
}

// Hits reports how many requests /x/status-then-ok, /x/flaky-reset and
// /x/drop-after-read have seen for key (they share one counter per key;
// /x/count?key=K reports it over HTTP), and how /x/ratelimit answered
// ("ratelimit-ok:"+key, "ratelimit-429:"+key).
func (s *Servers) Hits(key string) int { return s.handler.count(key) }

// ProxyRequests counts requests the HTTP proxy accepted for forwarding:
// absolute-URI requests plus CONNECTs, after authentication.
func (s *Servers) ProxyRequests() int64 { return s.proxy.requests.Load() }

// ProxyAuthFailures counts requests the HTTP proxy answered with 407.
func (s *Servers) ProxyAuthFailures() int64 { return s.proxy.authFailures.Load() }

// SOCKS5Conns counts TCP connections accepted by the SOCKS5 proxy,
// including ones that later failed authentication.
func (s *Servers) SOCKS5Conns() int64 { return s.socks.conns.Load() }

// SOCKS5Tunnels counts SOCKS5 CONNECT requests that passed authentication.
func (s *Servers) SOCKS5Tunnels() int64 { return s.socks.tunnels.Load() }

// closeWait bounds how long Close waits for handlers after their
// connections are gone; they all watch for shutdown, so this is a backstop.
const closeWait = 10 * time.Second

// Close stops every server, ends stalled handlers and tunnels, waits for
// the goroutines it started and removes the temporary CA directory. It is
// safe to call more than once.
func (s *Servers) Close() error {
	s.closeOnce.Do(func() {
		s.handler.shutdown()
		var errs []error
		if s.h3 != nil {
			if err := s.StopH3(); err != nil {
				errs = append(errs, err)
			}
		}
		for _, srv := range s.servers {
			if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errs = append(errs, err)
			}
		}
		if s.socks != nil {
			_ = s.socks.close()
		}
		for _, r := range s.raws {
			r.close()
		}
		for _, rs := range s.sockets {
			rs.close()
		}
		// Hijacked connections (CONNECT tunnels, SOCKS5 streams) are not
		// closed by http.Server.Close.
		s.tracker.closeAll()

		done := make(chan struct{})
		go func() {
			s.serveWG.Wait()
			if s.socks != nil {
				s.socks.wait()
			}
			for _, r := range s.raws {
				r.wait()
			}
			s.handler.wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(closeWait):
			errs = append(errs, errors.New("testserver: handlers still running after close"))
		}
		if s.proxy != nil {
			s.proxy.close()
		}
		if s.tempDir != "" {
			if err := os.RemoveAll(s.tempDir); err != nil {
				errs = append(errs, err)
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
