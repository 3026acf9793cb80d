package testserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// h3Server is the HTTP/3 server on UDP and its TCP TLS twin on the same
// port number, which advertises it with Alt-Svc: h3=":PORT".
type h3Server struct {
	srv   *http3.Server
	udp   *net.UDPConn
	conns atomic.Int64 // QUIC connections the server accepted
	done  chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// startH3 listens on addr (host:port; port 0 picks one free for TCP and
// UDP both) with TLS over TCP (h2 and http/1.1, answering with Alt-Svc)
// and HTTP/3 over QUIC.
func (s *Servers) startH3(addr string, tlsConf *tls.Config, listen func(string) (net.Listener, error)) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var (
		ln  net.Listener
		udp *net.UDPConn
		err error
	)
	for range 50 {
		if ln, err = listen(addr); err != nil {
			return err
		}
		tcp := ln.Addr().(*net.TCPAddr)
		udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: tcp.IP, Port: tcp.Port})
		if err == nil {
			break
		}
		ln.Close()
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			return fmt.Errorf("testserver: listen udp %s: %w", addr, err)
		}
	}
	if err != nil {
		return fmt.Errorf("testserver: no port free for both TCP and UDP: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	s.H3URL = "https://" + ln.Addr().String()
	altSvc := `h3=":` + strconv.Itoa(port) + `"; ma=3600`
	advertise := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Alt-Svc", altSvc)
		s.handler.ServeHTTP(w, r)
	})

	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	s.serve(&http.Server{Handler: advertise, Protocols: &protos, TLSConfig: tlsConf.Clone()}, ln, true)

	h := &h3Server{udp: udp, done: make(chan struct{})}
	h.srv = &http3.Server{
		Handler:    advertise,
		TLSConfig:  http3.ConfigureTLSConfig(tlsConf.Clone()),
		QUICConfig: &quic.Config{MaxIncomingStreams: 1000},
		ConnContext: func(ctx context.Context, _ *quic.Conn) context.Context {
			h.conns.Add(1)
			return ctx
		},
	}
	s.h3 = h
	go func() {
		defer close(h.done)
		_ = h.srv.Serve(udp)
	}()
	return nil
}

// H3Conns counts the QUIC connections the HTTP/3 server accepted.
func (s *Servers) H3Conns() int64 { return s.h3.conns.Load() }

// StopH3 closes the HTTP/3 server and its UDP socket (its connections
// end); the TCP twin on the same port goes on serving and advertising h3.
func (s *Servers) StopH3() error {
	h := s.h3
	h.stopOnce.Do(func() {
		h.stopErr = h.srv.Close()
		if err := h.udp.Close(); err != nil && h.stopErr == nil {
			h.stopErr = err
		}
		<-h.done
	})
	return h.stopErr
}
