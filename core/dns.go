package core

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Bounds of the client's DNS cache (DefaultDNSCacheTTL is its TTL).
const (
	// dnsNegativeTTL is how long a client keeps "no such host" (at most
	// the positive TTL).
	dnsNegativeTTL = 5 * time.Second
	// dnsMaxEntries bounds the names a client remembers; past it, expired
	// answers are dropped first, then any.
	dnsMaxEntries = 10_000
	// dnsLookupTimeout bounds one lookup, which callers share: it runs
	// on after a caller gives up, so that the others get its answer.
	dnsLookupTimeout = 30 * time.Second
	// dnsFallbackDelay is how long the first address family gets before
	// the other one races it (Go's net.Dialer default, RFC 8305's
	// "Happy Eyeballs").
	dnsFallbackDelay = 300 * time.Millisecond
)

// dnsCache resolves the host names a client dials and keeps each answer
// for a while, so that a batch to one host looks it up once, not once
// per connection. Concurrent lookups of one name are one lookup.
// Answers are kept ttl, "no such host" negTTL; other failures (a
// timeout, a server failure) are not kept. With ttl 0 nothing is kept,
// and every dial resolves (still one lookup for concurrent dials).
//
// Go's net.Dialer races the address families (Happy Eyeballs) only when
// it resolves the name itself, so the cache dials the addresses as it
// would: those of the first address's family one after the other,
// sharing the time left, and after dnsFallbackDelay, those of the other
// family in parallel.
type dnsCache struct {
	resolver *net.Resolver // nil: net.DefaultResolver
	ttl      time.Duration // 0: answers are not kept
	negTTL   time.Duration
	fallback time.Duration // the other family's head start
	timeout  time.Duration // the whole dial, lookup included; 0: none
	// dialOne connects to one address (an IP and a port).
	dialOne func(ctx context.Context, network, addr string) (net.Conn, error)

	lookups singleflight.Group // concurrent lookups of one name are one

	mu      sync.Mutex
	entries map[string]dnsEntry
}

type dnsEntry struct {
	addrs   []netip.Addr
	err     error // *net.DNSError, IsNotFound
	expires time.Time
}

// newDNSCache returns the resolver of a client's dialer: ttlSeconds 0
// means DefaultDNSCacheTTL, negative keeps nothing. timeout bounds a
// whole dial (lookup and connects), as net.Dialer.Timeout does.
func newDNSCache(ttlSeconds float64, timeout time.Duration, dial *net.Dialer) *dnsCache {
	ttl := seconds(DefaultDNSCacheTTL)
	switch {
	case ttlSeconds < 0:
		ttl = 0
	case ttlSeconds > 0:
		ttl = seconds(ttlSeconds)
	}
	return &dnsCache{
		ttl:      ttl,
		negTTL:   min(ttl, dnsNegativeTTL),
		fallback: dnsFallbackDelay,
		timeout:  timeout,
		dialOne:  dial.DialContext,
		entries:  map[string]dnsEntry{},
	}
}

// dialHost is the backend's dial: a name is resolved through the
// client's DNS cache, and the connection notes what its lookup and
// connect took (see Timings).
func (b *transportBackend) dialHost(ctx context.Context, network, addr string) (net.Conn, error) {
	start := time.Now()
	var (
		c      net.Conn
		lookup time.Duration
		err    error
	)
	if b.dns == nil {
		c, err = b.dial.DialContext(ctx, network, addr)
	} else {
		c, lookup, err = b.dns.dial(ctx, network, addr)
	}
	if err != nil {
		return nil, err
	}
	ready := time.Now()
	tc := &timedConn{Conn: c, dns: lookup, connect: ready.Sub(start) - lookup, ready: ready}
	if t := traceOf(ctx); t != nil {
		t.dialed.Store(tc)
	}
	return tc, nil
}

// dial connects to addr (host:port), resolving host through the cache
// unless it is an IP address; lookup is how long resolving took.
func (d *dnsCache) dial(ctx context.Context, network, addr string) (c net.Conn, lookup time.Duration, err error) {
	host, portText, err := net.SplitHostPort(addr)
	port, perr := strconv.ParseUint(portText, 10, 16)
	if _, ipErr := netip.ParseAddr(host); err != nil || perr != nil || ipErr == nil {
		// An IP address (or what net.Dialer alone understands).
		c, err = d.dialOne(ctx, network, addr)
		return c, 0, err
	}
	if d.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.timeout)
		defer cancel()
	}
	start := time.Now()
	ips, err := d.lookup(ctx, host)
	lookup = time.Since(start)
	if err != nil {
		return nil, lookup, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	c, err = d.dialAddrs(ctx, network, ips, uint16(port))
	return c, lookup, err
}

// lookup returns host's addresses: from the cache while its answer is
// fresh, else from one lookup shared with every concurrent caller.
func (d *dnsCache) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if e, ok := d.cached(host); ok {
		return e.addrs, e.err
	}
	ch := d.lookups.DoChan(host, func() (any, error) {
		// A lookup that ended between the check above and this call
		// kept its answer: one name is looked up once per TTL.
		if e, ok := d.cached(host); ok {
			return e.addrs, e.err
		}
		return d.resolve(host)
	})
	select {
	case r := <-ch:
		addrs, _ := r.Val.([]netip.Addr)
		return addrs, r.Err
	case <-ctx.Done():
		err := ctx.Err()
		return nil, &net.DNSError{Err: err.Error(), Name: host, UnwrapErr: err,
			IsTimeout: errors.Is(err, context.DeadlineExceeded)}
	}
}

// cached is host's unexpired entry; an expired one is dropped.
func (d *dnsCache) cached(host string) (dnsEntry, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[host]
	if ok && !time.Now().Before(e.expires) {
		delete(d.entries, host)
		ok = false
	}
	return e, ok
}

// resolve runs one lookup for everyone waiting on it (it runs on after a
// caller gives up), and keeps its answer.
func (d *dnsCache) resolve(host string) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), dnsLookupTimeout)
	r := d.resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	cancel()
	for i, ip := range addrs {
		addrs[i] = ip.Unmap()
	}
	if err == nil && len(addrs) == 0 {
		err = &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var ttl time.Duration
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		ttl = d.ttl
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		ttl = d.negTTL
	}
	if ttl > 0 {
		d.mu.Lock()
		if len(d.entries) >= dnsMaxEntries {
			d.evict()
		}
		d.entries[host] = dnsEntry{addrs: addrs, err: err, expires: time.Now().Add(ttl)}
		d.mu.Unlock()
	}
	return addrs, err
}

// evict makes room for an entry: expired ones go, and when none had
// expired, a few others; the caller holds d.mu.
func (d *dnsCache) evict() {
	now := time.Now()
	for k, e := range d.entries {
		if !now.Before(e.expires) {
			delete(d.entries, k)
		}
	}
	for k := range d.entries {
		if len(d.entries) < dnsMaxEntries*9/10 {
			break
		}
		delete(d.entries, k)
	}
}

// dialAddrs connects to the first of ips that answers, as net.Dialer
// does with the addresses of a name: for "tcp", the addresses of the
// first one's family in order, and after d.fallback (or at once when
// they have all failed) those of the other family, racing them.
func (d *dnsCache) dialAddrs(ctx context.Context, network string, ips []netip.Addr, port uint16) (net.Conn, error) {
	var primaries, fallbacks []netip.Addr
	switch network {
	case "tcp4", "tcp6":
		v4 := network == "tcp4"
		for _, ip := range ips {
			if ip.Unmap().Is4() == v4 {
				primaries = append(primaries, ip)
			}
		}
		if len(primaries) == 0 {
			return nil, &net.OpError{Op: "dial", Net: network,
				Err: &net.AddrError{Err: "no suitable address found", Addr: strconv.Itoa(int(port))}}
		}
	case "tcp":
		first := ips[0].Unmap().Is4()
		for _, ip := range ips {
			if ip.Unmap().Is4() == first {
				primaries = append(primaries, ip)
			} else {
				fallbacks = append(fallbacks, ip)
			}
		}
	default:
		primaries = ips
	}
	if len(fallbacks) == 0 {
		return d.dialSerial(ctx, network, primaries, port)
	}

	type result struct {
		c       net.Conn
		err     error
		primary bool
	}
	results := make(chan result) // unbuffered: a racer that lost closes its connection
	returned := make(chan struct{})
	defer close(returned)
	race := func(ctx context.Context, primary bool) {
		ras := primaries
		if !primary {
			ras = fallbacks
		}
		c, err := d.dialSerial(ctx, network, ras, port)
		select {
		case results <- result{c, err, primary}:
		case <-returned:
			if c != nil {
				c.Close()
			}
		}
	}
	primaryCtx, cancelPrimary := context.WithCancel(ctx)
	defer cancelPrimary()
	fallbackCtx, cancelFallback := context.WithCancel(ctx)
	defer cancelFallback()
	go race(primaryCtx, true)
	timer := time.NewTimer(d.fallback)
	defer timer.Stop()
	var firstErr error
	pending, started := 1, false
	startFallback := func() {
		if !started {
			started = true
			pending++
			go race(fallbackCtx, false)
		}
	}
	for {
		select {
		case <-timer.C:
			startFallback()
		case r := <-results:
			pending--
			if r.err == nil {
				return r.c, nil
			}
			if r.primary || firstErr == nil {
				firstErr = r.err // the primaries' error wins
			}
			if r.primary {
				startFallback() // the primaries failed: the fallbacks need not wait
			}
			if pending == 0 {
				return nil, firstErr
			}
		}
	}
}

// dialSerial tries ips in order (dialInTurn).
func (d *dnsCache) dialSerial(ctx context.Context, network string, ips []netip.Addr, port uint16) (net.Conn, error) {
	return dialInTurn(ctx, len(ips), func(ctx context.Context, i int) (net.Conn, error) {
		return d.dialOne(ctx, network, netip.AddrPortFrom(ips[i], port).String())
	})
}

// dialInTurn dials n addresses one after the other, each with its
// addrShare of the time ctx has left, until one answers; when none does,
// or ctx ends, it returns the first error. A dial under an ended context
// fails at once (as net.Dialer's and quic-go's do).
func dialInTurn[C any](ctx context.Context, n int, dial func(ctx context.Context, i int) (C, error)) (C, error) {
	var first error
	for i := range n {
		dctx, cancel := addrShare(ctx, n-i)
		c, err := dial(dctx, i)
		cancel()
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	var none C
	return none, first
}

// addrShare is the context of the next of left addresses dialled in turn
// under ctx, as net.Dialer shares a deadline: an equal share of the time
// left, at least 2 s (or all of it); ctx itself when it has no deadline or
// the share reaches it.
func addrShare(ctx context.Context, left int) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	share := time.Until(deadline) / time.Duration(left)
	if share < 2*time.Second {
		share = min(2*time.Second, time.Until(deadline))
	}
	if partial := time.Now().Add(share); partial.Before(deadline) {
		return context.WithDeadline(ctx, partial)
	}
	return ctx, func() {}
}
