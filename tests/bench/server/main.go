// Command server is the benchmark's HTTP server: one process, GOMAXPROCS=1,
// meant to be pinned to a CPU of its own (tests/bench/run.py runs it under
// taskset). It serves
//
//	/json       a fixed JSON document of about 200 bytes
//	/bytes/N    N bytes from a preallocated buffer (N <= -max-bytes)
//	/stats      {"h1":..,"h2":..,"h3":..,"tls_full":..,"tls_resumed":..} requests
//	            served so far per protocol (/stats itself not counted), so
//	            the harness can check that a client really spoke the
//	            protocol it was asked to, and the TLS handshakes made so far,
//	            full and resumed (TLS session resumption)
//
// on a plain port (HTTP/1.1 and h2c with prior knowledge) and a TLS port
// (h2 and HTTP/1.1 by ALPN) with a self-signed certificate made at start and
// written to -cert. Once both listen it prints one JSON line to stdout:
//
//	{"http_url":"http://127.0.0.1:P","tls_url":"https://127.0.0.1:Q","cert":"...","pid":N}
//
// and serves until SIGINT/SIGTERM, or until stdin closes when
// -exit-on-stdin-close is given (so a harness that dies takes it along).
//
// With -hosts-addr 0.0.0.0:0 (the many-hosts workload) it also serves the
// plain port's protocols on every loopback address, 127.0.0.0/8, so that a
// client can reach thousands of distinct hosts 127.0.X.Y on one port. The
// listener is bound to the wildcard address but only ever talks to
// loopback: the socket is tied to the loopback interface (SO_BINDTODEVICE
// "lo", where the kernel allows it) and every accepted connection whose
// local or remote address is not in 127.0.0.0/8 is closed at once, before a
// byte is read. The JSON line then also carries "hosts_port" and
// "hosts_bound_to_lo". -tls-hosts-addr does the same for the TLS port's
// protocols ("tls_hosts_port"), with the same certificate: a client that
// checks certificates would refuse every host but 127.0.0.1, and the
// benchmark's clients do not check.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fastreq/fastreq/tests/testserver"
	"github.com/quic-go/quic-go/http3"
)

// jsonBody is the /json document: 200 bytes, a realistic small API answer.
var jsonBody = []byte(`{"id":12345,"name":"fastreq-bench","active":true,"score":98.6,` +
	`"tags":["alpha","beta","gamma"],"owner":{"login":"octocat","id":1},` +
	`"created_at":"2024-01-01T00:00:00Z","description":"benchmark payload"}`)

var (
	served1 atomic.Int64 // requests served over HTTP/1.x
	served2 atomic.Int64 // requests served over HTTP/2
	served3 atomic.Int64 // requests served over HTTP/3

	handshakesFull    atomic.Int64 // TLS handshakes that did not resume a session
	handshakesResumed atomic.Int64 // TLS handshakes that resumed one
)

// countHandshake is the TLS ports' VerifyConnection: the server calls it on
// every handshake, resumed or not.
func countHandshake(cs tls.ConnectionState) error {
	if cs.DidResume {
		handshakesResumed.Add(1)
	} else {
		handshakesFull.Add(1)
	}
	return nil
}

func count(r *http.Request) {
	switch r.ProtoMajor {
	case 3:
		served3.Add(1)
	case 2:
		served2.Add(1)
	default:
		served1.Add(1)
	}
}

func handler(maxBytes int) http.Handler {
	buf := make([]byte, maxBytes)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /json", func(w http.ResponseWriter, r *http.Request) {
		count(r)
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(jsonBody))}
		_, _ = w.Write(jsonBody)
	})
	mux.HandleFunc("GET /bytes/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.PathValue("n"))
		if err != nil || n < 0 || n > maxBytes {
			http.Error(w, fmt.Sprintf("n must be 0..%d", maxBytes), http.StatusBadRequest)
			return
		}
		count(r)
		h := w.Header()
		h["Content-Type"] = []string{"application/octet-stream"}
		h["Content-Length"] = []string{strconv.Itoa(n)}
		_, _ = w.Write(buf[:n])
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int64{"h1": served1.Load(), "h2": served2.Load(), "h3": served3.Load(),
			"tls_full": handshakesFull.Load(), "tls_resumed": handshakesResumed.Load()})
	})
	return mux
}

// selfSigned makes an ECDSA P-256 certificate for 127.0.0.1 and localhost
// and writes it as PEM to certPath.
func selfSigned(certPath string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "fastreq-bench"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if certPath != "" {
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		if err := os.WriteFile(certPath, pemBytes, 0o644); err != nil {
			return tls.Certificate{}, err
		}
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench server:", err)
		os.Exit(1)
	}
}

func run() error {
	httpAddr := flag.String("http", "127.0.0.1:0", "address of the plain port (HTTP/1.1 + h2c)")
	tlsAddr := flag.String("tls", "127.0.0.1:0", "address of the TLS port (h2 + HTTP/1.1 by ALPN)")
	certPath := flag.String("cert", "", "file to write the self-signed certificate to (PEM); empty: not written")
	maxBytes := flag.Int("max-bytes", 16<<20, "largest N served by /bytes/N (preallocated)")
	gomaxprocs := flag.Int("gomaxprocs", 1, "GOMAXPROCS")
	stdinEOF := flag.Bool("exit-on-stdin-close", false, "exit when stdin reaches EOF")
	hostsAddr := flag.String("hosts-addr", "", "also serve the plain port's protocols on every loopback "+
		"address: listen on this wildcard address (0.0.0.0:0), loopback peers only; empty: off")
	tlsHostsAddr := flag.String("tls-hosts-addr", "", "the same for the TLS port's protocols; empty: off")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}
	runtime.GOMAXPROCS(*gomaxprocs)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	stdinClosed := make(chan struct{})
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(stdinClosed)
		}()
	}

	cert, err := selfSigned(*certPath)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	h := handler(*maxBytes)

	var plainProtos http.Protocols
	plainProtos.SetHTTP1(true)
	plainProtos.SetUnencryptedHTTP2(true)
	plain := &http.Server{Handler: h, Protocols: &plainProtos, ReadHeaderTimeout: 30 * time.Second}

	var tlsProtos http.Protocols
	tlsProtos.SetHTTP1(true)
	tlsProtos.SetHTTP2(true)
	secure := &http.Server{
		Handler:           h,
		Protocols:         &tlsProtos,
		ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			VerifyConnection: countHandshake},
	}

	pl, err := net.Listen("tcp", *httpAddr)
	if err != nil {
		return err
	}
	tl, err := net.Listen("tcp", *tlsAddr)
	if err != nil {
		return err
	}
	errc := make(chan error, 5)
	go func() { errc <- plain.Serve(pl) }()
	go func() { errc <- secure.ServeTLS(tl, "", "") }()
	info := map[string]any{
		"http_url": "http://" + pl.Addr().String(),
		"tls_url":  "https://" + tl.Addr().String(),
		"cert":     *certPath,
		"pid":      os.Getpid(),
	}
	// HTTP/3 on the TLS port's number over UDP (W2-h3); without a free UDP
	// port the workload's clients are told there is none.
	h3 := &http3.Server{Handler: h, TLSConfig: http3.ConfigureTLSConfig(secure.TLSConfig)}
	if udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tl.Addr().(*net.TCPAddr).Port}); err == nil {
		go func() { errc <- h3.Serve(udp) }()
		info["h3_url"] = "https://" + tl.Addr().String()
		defer h3.Close()
	}
	var hostServers []*http.Server
	for _, hs := range []struct {
		addr, key string
		secure    bool
	}{{*hostsAddr, "hosts", false}, {*tlsHostsAddr, "tls_hosts", true}} {
		if hs.addr == "" {
			continue
		}
		hl, err := testserver.ListenLoopbackHosts(hs.addr)
		if err != nil {
			return fmt.Errorf("%s listener: %w", hs.key, err)
		}
		srv := &http.Server{Handler: h, Protocols: &plainProtos, ReadHeaderTimeout: 30 * time.Second}
		if hs.secure {
			srv.Protocols, srv.TLSConfig = &tlsProtos, secure.TLSConfig
			go func() { errc <- srv.ServeTLS(hl, "", "") }()
		} else {
			go func() { errc <- srv.Serve(hl) }()
		}
		hostServers = append(hostServers, srv)
		info[hs.key+"_port"] = hl.Addr().(*net.TCPAddr).Port
		info["hosts_bound_to_lo"] = hl.Bound
		defer func() {
			if n := hl.Rejected.Load(); n > 0 {
				fmt.Fprintf(os.Stderr, "bench server: closed %d non-loopback connection(s) on the %s port\n", n, hs.key)
			}
		}()
	}

	line, _ := json.Marshal(info)
	fmt.Println(string(line))

	select {
	case <-stop:
	case <-stdinClosed:
	case err := <-errc:
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_ = plain.Shutdown(ctx)
	_ = secure.Shutdown(ctx)
	for _, srv := range hostServers {
		_ = srv.Shutdown(ctx)
	}
	return nil
}
