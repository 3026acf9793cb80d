package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dnsServer is a DNS server on loopback UDP that answers A and AAAA
// queries from its table (a name it does not know is NXDOMAIN) and counts
// the A queries per name.
type dnsServer struct {
	conn  *net.UDPConn
	delay atomic.Int64 // before each answer

	mu      sync.Mutex
	answers map[string][]netip.Addr // lower-case name without the final dot
	queries map[string]int
}

func startDNSServer(t testing.TB, answers map[string][]netip.Addr) *dnsServer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{conn: conn, answers: answers, queries: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			q := append([]byte(nil), buf[:n]...)
			go func() {
				time.Sleep(time.Duration(s.delay.Load()))
				if out := s.answer(q); out != nil {
					conn.WriteToUDPAddrPort(out, from)
				}
			}()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return s
}

// resolver is a net.Resolver that asks s (and nothing else).
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.conn.LocalAddr().String())
	}}
}

// count is how many A queries for name arrived.
func (s *dnsServer) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[name]
}

func (s *dnsServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.queries {
		n += c
	}
	return n
}

// answer builds the response to one query (RFC 1035 section 4), or nil
// for what is not one question of type A or AAAA.
func (s *dnsServer) answer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	var labels []string
	i := 12
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if l > 63 || i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	name := strings.ToLower(strings.Join(labels, "."))
	const typeA, typeAAAA = 1, 28
	if qtype != typeA && qtype != typeAAAA {
		return nil
	}
	s.mu.Lock()
	if qtype == typeA {
		s.queries[name]++
	}
	addrs, known := s.answers[name]
	s.mu.Unlock()

	var answers [][]byte
	for _, a := range addrs {
		if a.Is4() != (qtype == typeA) {
			continue
		}
		rr := []byte{0xc0, 12} // the name: a pointer to the question's
		rr = binary.BigEndian.AppendUint16(rr, qtype)
		rr = binary.BigEndian.AppendUint16(rr, 1)  // class IN
		rr = binary.BigEndian.AppendUint32(rr, 60) // TTL
		ip := a.AsSlice()
		rr = binary.BigEndian.AppendUint16(rr, uint16(len(ip)))
		answers = append(answers, append(rr, ip...))
	}
	out := append([]byte(nil), q[:2]...)             // the query's id
	flags := uint16(0x8000 | 0x0400 | 0x0080)        // response, authoritative, recursion available
	flags |= binary.BigEndian.Uint16(q[2:]) & 0x0100 // recursion desired, echoed
	if !known {
		flags |= 3 // NXDOMAIN
	}
	out = binary.BigEndian.AppendUint16(out, flags)
	out = binary.BigEndian.AppendUint16(out, 1)
	out = binary.BigEndian.AppendUint16(out, uint16(len(answers)))
	out = append(out, 0, 0, 0, 0) // no authority, no additional records
	out = append(out, question...)
	for _, rr := range answers {
		out = append(out, rr...)
	}
	return out
}

// dnsTestClient is a test client whose DNS cache asks s.
func dnsTestClient(t *testing.T, s *dnsServer, edit func(*ClientConfig)) *Client {
	t.Helper()
	c := newTestClient(t, edit)
	c.backend.dns.resolver = s.resolver()
	return c
}

// closeConn makes every request dial (and so resolve) anew.
var closeConn = map[string]string{"Connection": "close"}

func manyHostURL(name string) string {
	return "http://" + net.JoinHostPort(name, strconv.Itoa(ts.ManyHostsPort)) + "/x/json"
}

// 50 hosts x 10 requests, each on a new connection, are 50 lookups: one
// per name, concurrent dials sharing it and later ones using the cache.
func TestDNSCacheLooksEachHostUpOnce(t *testing.T) {
	const hosts, each = 50, 10
	answers := map[string][]netip.Addr{}
	var rs []RequestConfig
	for h := range hosts {
		name := fmt.Sprintf("h%d.fastreq.test", h)
		answers[name] = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 1, byte(h + 1)})}
		for range each {
			rs = append(rs, RequestConfig{URL: manyHostURL(name), Headers: closeConn})
		}
	}
	s := startDNSServer(t, answers)
	c := dnsTestClient(t, s, func(c *ClientConfig) { c.Concurrency = 32 })
	for _, res := range mustSubmit(t, c, rs).Wait() {
		mustOK(t, res)
		if res.Timings.Reused {
			t.Fatalf("request %d reused a connection: every request must dial", res.Index)
		}
	}
	if n := s.total(); n != hosts {
		t.Errorf("%d lookups for %d requests to %d hosts, want %d", n, len(rs), hosts, hosts)
	}
	for name := range answers {
		if n := s.count(name); n != 1 {
			t.Errorf("%s looked up %d times, want once", name, n)
		}
	}

	// Without the cache, every new connection looks its host up.
	s2 := startDNSServer(t, answers)
	off := dnsTestClient(t, s2, func(c *ClientConfig) { c.DNSCacheTTL = -1 })
	for range 5 {
		mustOK(t, doReq(t, off, RequestConfig{URL: manyHostURL("h7.fastreq.test"), Headers: closeConn}))
	}
	if n := s2.count("h7.fastreq.test"); n != 5 {
		t.Errorf("dns_cache_ttl < 0: %d lookups for 5 connections, want 5", n)
	}
}

func TestDNSCacheTimingsAndExpiry(t *testing.T) {
	name := "expiring.fastreq.test"
	s := startDNSServer(t, map[string][]netip.Addr{name: {netip.MustParseAddr("127.0.2.1")}})
	c := dnsTestClient(t, s, nil)
	c.backend.dns.ttl = 300 * time.Millisecond
	get := func() *NormalizedResponse {
		res := doReq(t, c, RequestConfig{URL: manyHostURL(name), Headers: closeConn})
		mustOK(t, res)
		return res
	}
	first := get()
	if first.Timings.DNS <= 0 || first.Timings.Reused {
		t.Errorf("first request: %+v, want a dns time and a new connection", first.Timings)
	}
	get()
	if n := s.count(name); n != 1 {
		t.Fatalf("%d lookups within the TTL, want 1", n)
	}
	time.Sleep(400 * time.Millisecond)
	get()
	if n := s.count(name); n != 2 {
		t.Errorf("%d lookups after the TTL, want 2 (expiry re-resolves)", n)
	}
}

func TestDNSCacheKeepsNoSuchHostForItsTTL(t *testing.T) {
	s := startDNSServer(t, map[string][]netip.Addr{})
	c := dnsTestClient(t, s, nil)
	c.backend.dns.negTTL = 300 * time.Millisecond
	name := "missing.fastreq.test"
	for range 3 {
		res := doReq(t, c, RequestConfig{URL: manyHostURL(name)})
		e := wantKind(t, res, KindConnect)
		if !strings.Contains(e.Message, "no such host") {
			t.Errorf("message %q, want it to say no such host", e.Message)
		}
	}
	if n := s.count(name); n != 1 {
		t.Fatalf("%d lookups of a missing name within the negative TTL, want 1", n)
	}
	time.Sleep(400 * time.Millisecond)
	wantKind(t, doReq(t, c, RequestConfig{URL: manyHostURL(name)}), KindConnect)
	if n := s.count(name); n != 2 {
		t.Errorf("%d lookups after the negative TTL, want 2", n)
	}
}

// Concurrent lookups of one name are one lookup, even with nothing kept.
func TestDNSLookupsOfOneNameAreShared(t *testing.T) {
	name := "shared.fastreq.test"
	s := startDNSServer(t, map[string][]netip.Addr{name: {netip.MustParseAddr("127.0.2.2")}})
	s.delay.Store(int64(100 * time.Millisecond))
	d := newDNSCache(-1, 0, &net.Dialer{})
	d.resolver = s.resolver()
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			addrs, err := d.lookup(context.Background(), name)
			if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("127.0.2.2") {
				t.Errorf("lookup: %v, %v", addrs, err)
			}
		})
	}
	wg.Wait()
	if n := s.count(name); n != 1 {
		t.Errorf("%d lookups for 20 concurrent callers, want 1", n)
	}
	if len(d.entries) != 0 {
		t.Errorf("dns_cache_ttl < 0 kept %d answers", len(d.entries))
	}
	// A caller that gives up does not end the lookup for the others.
	s.delay.Store(int64(200 * time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.lookup(ctx, name); err == nil {
		t.Error("a lookup past its caller's deadline succeeded")
	}
	if _, err := d.lookup(context.Background(), name); err != nil {
		t.Errorf("the lookup shared with a caller that gave up: %v", err)
	}
	if n := s.count(name); n != 2 {
		t.Errorf("%d lookups, want 2", n)
	}
}

// IP addresses are dialled as they are, never looked up.
func TestDNSCacheSkipsIPAddresses(t *testing.T) {
	s := startDNSServer(t, nil)
	c := dnsTestClient(t, s, nil)
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json"}))
	mustOK(t, doReq(t, c, RequestConfig{URL: manyHostURL("127.0.3.3")}))
	if n := s.total(); n != 0 {
		t.Errorf("%d lookups for IP addresses", n)
	}
}

// fakeDialer records the addresses dialled; each answers as its plan says.
type fakeDialer struct {
	mu     sync.Mutex
	dialed []string
	plan   map[string]string // address -> "ok", "fail" or "hang"
}

func (f *fakeDialer) dial(ctx context.Context, _, addr string) (net.Conn, error) {
	f.mu.Lock()
	f.dialed = append(f.dialed, addr)
	f.mu.Unlock()
	switch f.plan[addr] {
	case "ok":
		a, b := net.Pipe()
		b.Close()
		return a, nil
	case "hang":
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: ctx.Err()}
	}
	return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused " + addr)}
}

func (f *fakeDialer) order() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.dialed, " ")
}

// The addresses of a name are dialled as net.Dialer dials them: the first
// family in order, the other racing it after the fallback delay.
func TestDNSDialKeepsHappyEyeballs(t *testing.T) {
	v6a, v6b, v4a := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("192.0.2.1")
	mixed := []netip.Addr{v6a, v4a, v6b}
	const p6a, p6b, p4a = "[2001:db8::1]:80", "[2001:db8::2]:80", "192.0.2.1:80"
	for _, tt := range []struct {
		name    string
		network string
		plan    map[string]string
		order   string
		err     string // a substring; "" for success
		minTime time.Duration
	}{
		{"first works", "tcp", map[string]string{p6a: "ok"}, p6a, "", 0},
		{"family in order, then the other at once", "tcp", map[string]string{p6a: "fail", p6b: "fail", p4a: "ok"},
			p6a + " " + p6b + " " + p4a, "", 0},
		{"a hanging family is raced after the delay", "tcp", map[string]string{p6a: "hang", p4a: "ok"},
			p6a + " " + p4a, "", 50 * time.Millisecond},
		{"all fail: the first family's first error", "tcp", map[string]string{},
			p6a + " " + p6b + " " + p4a, "refused " + p6a, 0},
		{"tcp4 dials IPv4 only", "tcp4", map[string]string{p4a: "ok"}, p4a, "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeDialer{plan: tt.plan}
			d := newDNSCache(0, 0, &net.Dialer{})
			d.fallback = 50 * time.Millisecond
			d.dialOne = f.dial
			start := time.Now()
			c, err := d.dialAddrs(testCtx(t), tt.network, mixed, 80)
			took := time.Since(start)
			if c != nil {
				c.Close()
			}
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Fatalf("error %v, want %q", err, tt.err)
			}
			if got := f.order(); got != tt.order {
				t.Errorf("dialled %q, want %q", got, tt.order)
			}
			if took < tt.minTime || (tt.minTime == 0 && took >= d.fallback) {
				t.Errorf("took %v (fallback delay %v)", took, d.fallback)
			}
		})
	}
}
