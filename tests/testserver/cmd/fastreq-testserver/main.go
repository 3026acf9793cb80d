// Command fastreq-testserver runs the testserver package's servers for test
// suites outside Go (C, Python, benchmarks). Once every server listens it
// prints exactly one JSON line to stdout, e.g.
//
//	{"http_url":"http://127.0.0.1:40001","tls_url":"https://127.0.0.1:40002",...,"pid":1234}
//
// with the fields of testserver.Info: http_url, tls_url, tls_h1_url, h3_url,
// proxy_url, proxy_addr, socks5_url, socks5_addr, ca_file, http_alt_url,
// many_hosts_url, many_hosts_port, silent_url, silent_read_url,
// blackhole_url and closed_url.
//
// and serves until SIGINT/SIGTERM, or until stdin closes when
// -exit-on-stdin-close is given (so a parent that dies takes it along).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/fastreq/fastreq/tests/testserver"
)

// line is the JSON printed on startup: the Info fields plus the pid.
type line struct {
	testserver.Info
	PID int `json:"pid"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "fastreq-testserver:", err)
		os.Exit(1)
	}
}

func run() error {
	var opts testserver.Options
	flag.StringVar(&opts.HTTPAddr, "http", "127.0.0.1:0", "address of the HTTP/1.1 + h2c server")
	flag.StringVar(&opts.TLSAddr, "tls", "127.0.0.1:0", "address of the TLS server offering h2 and http/1.1")
	flag.StringVar(&opts.TLSH1Addr, "tls-h1", "127.0.0.1:0", "address of the TLS server offering http/1.1 only")
	flag.StringVar(&opts.H3Addr, "h3", "127.0.0.1:0", "address of the HTTP/3 server (UDP) and its TLS twin (TCP, same port, advertising h3 in Alt-Svc)")
	flag.StringVar(&opts.ProxyAddr, "proxy", "127.0.0.1:0", "address of the HTTP forward proxy")
	flag.StringVar(&opts.SOCKS5Addr, "socks5", "127.0.0.1:0", "address of the SOCKS5 proxy")
	flag.StringVar(&opts.HTTPAltAddr, "http-alt", "127.0.0.1:0", "address of the second HTTP/1.1 + h2c server")
	flag.StringVar(&opts.ManyHostsAddr, "many-hosts", "0.0.0.0:0",
		"address of the many-hosts server (must cover 127.0.0.0/8; only loopback peers are served)")
	proxyAuth := flag.String("proxy-auth", "", "user:pass required by the HTTP proxy (Basic); empty for none")
	socksAuth := flag.String("socks5-auth", "", "user:pass required by the SOCKS5 proxy; empty for none")
	flag.StringVar(&opts.Dir, "dir", "", "directory for ca.pem (default: a temporary directory removed on exit)")
	gomaxprocs := flag.Int("gomaxprocs", 0, "GOMAXPROCS for the server (0 keeps the default)")
	stdinEOF := flag.Bool("exit-on-stdin-close", false, "exit when stdin reaches EOF")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", flag.Args())
	}

	var err error
	if opts.ProxyUser, opts.ProxyPass, err = splitAuth(*proxyAuth); err != nil {
		return fmt.Errorf("-proxy-auth: %w", err)
	}
	if opts.SOCKS5User, opts.SOCKS5Pass, err = splitAuth(*socksAuth); err != nil {
		return fmt.Errorf("-socks5-auth: %w", err)
	}
	if *gomaxprocs > 0 {
		runtime.GOMAXPROCS(*gomaxprocs)
	}

	// Subscribe before announcing readiness so an early signal is not lost.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	stdinClosed := make(chan struct{})
	if *stdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			close(stdinClosed)
		}()
	}

	srv, err := testserver.New(opts)
	if err != nil {
		return err
	}
	out, err := json.Marshal(line{Info: srv.Info(), PID: os.Getpid()})
	if err != nil {
		srv.Close()
		return err
	}
	if _, err := os.Stdout.Write(append(out, '\n')); err != nil {
		srv.Close()
		return err
	}

	select {
	case <-stop:
	case <-stdinClosed:
	}
	signal.Stop(stop)
	return srv.Close()
}

func splitAuth(s string) (user, pass string, err error) {
	if s == "" {
		return "", "", nil
	}
	user, pass, ok := strings.Cut(s, ":")
	if !ok || user == "" {
		return "", "", fmt.Errorf("want user:pass, got %q", s)
	}
	return user, pass, nil
}
