package testserver

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"sync/atomic"

	socks5 "github.com/armon/go-socks5"
)

// socksProxy is a SOCKS5 server that only allows CONNECT. It runs its own
// accept loop (instead of socks5.Server.Serve) so Close can wait for every
// connection goroutine.
type socksProxy struct {
	srv *socks5.Server
	ln  net.Listener
	wg  sync.WaitGroup

	conns   atomic.Int64 // accepted TCP connections
	tunnels atomic.Int64 // CONNECT requests that passed authentication
}

func startSOCKS5(ln net.Listener, user, pass string, t *connTracker) (*socksProxy, error) {
	s := &socksProxy{ln: ln}
	conf := &socks5.Config{
		Logger:   log.New(io.Discard, "", 0),
		Resolver: ipv4Resolver{},
		Rules:    connectOnly{&s.tunnels},
		Dial:     t.dial,
	}
	if user != "" {
		conf.Credentials = socks5.StaticCredentials{user: pass}
	}
	srv, err := socks5.New(conf)
	if err != nil {
		return nil, fmt.Errorf("testserver: socks5: %w", err)
	}
	s.srv = srv
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// serve holds one wg count for itself, so the Adds for connections never
// race with close's Wait.
func (s *socksProxy) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = s.srv.ServeConn(c)
		}()
	}
}

// close stops accepting; open connections end when the tracker closes them.
func (s *socksProxy) close() error { return s.ln.Close() }

func (s *socksProxy) wait() { s.wg.Wait() }

// connectOnly permits CONNECT and counts it; BIND and UDP ASSOCIATE are
// refused since nothing here needs them.
type connectOnly struct{ n *atomic.Int64 }

func (c connectOnly) Allow(ctx context.Context, req *socks5.Request) (context.Context, bool) {
	if req.Command != socks5.ConnectCommand {
		return ctx, false
	}
	c.n.Add(1)
	return ctx, true
}

// ipv4Resolver prefers IPv4 so that socks5h://localhost reaches servers
// bound to 127.0.0.1 even where localhost also maps to ::1.
type ipv4Resolver struct{}

func (ipv4Resolver) Resolve(ctx context.Context, name string) (context.Context, net.IP, error) {
	if name == "localhost" {
		return ctx, net.IPv4(127, 0, 0, 1), nil
	}
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip4", name)
	if err != nil || len(ips) == 0 {
		ips, err = net.DefaultResolver.LookupIP(ctx, "ip", name)
	}
	if err != nil {
		return ctx, nil, err
	}
	if len(ips) == 0 {
		return ctx, nil, fmt.Errorf("no addresses for %s", name)
	}
	return ctx, ips[0], nil
}
