package core

import (
	"math/rand/v2"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proxySchemes are the proxy schemes the transports can dial.
var proxySchemes = map[string]bool{"http": true, "https": true, "socks5": true, "socks5h": true}

// proxyFormsHint ends parse errors so the user sees what would have worked.
const proxyFormsHint = "; accepted forms are host:port, host:port:user:pass and " +
	"http(s)://, socks5:// or socks5h://[user:pass@]host:port"

// ParseProxy parses one proxy address in any accepted form and returns it as
// a URL with no path: "host:port" becomes http://host:port,
// "host:port:user:pass" (the webshare format) becomes
// http://user:pass@host:port, and http, https, socks5 and socks5h URLs are
// kept. A port is always required, so that a typo never sends traffic to a
// guessed port. Errors are validation errors with field "proxy"; their
// message never contains the password, since proxy lists end up in logs.
func ParseProxy(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, validationError("proxy", "empty proxy address"+proxyFormsHint)
	}
	if schemeLen(s) > 0 {
		return parseProxyURL(s)
	}
	return parseProxyColon(s)
}

// schemeLen returns the length of s's "scheme://" prefix, or 0 if s has
// none. The scheme must be a valid URL scheme token so that a password
// containing "://" in the host:port:user:pass form is not taken for one.
func schemeLen(s string) int {
	i := strings.Index(s, "://")
	if i <= 0 {
		return 0
	}
	for j := 0; j < i; j++ {
		c := s[j]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case j > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return 0
		}
	}
	return i + 3
}

// parseProxyURL handles the scheme://[user[:pass]@]host:port form.
func parseProxyURL(s string) (*url.URL, error) {
	shown := redactProxyInput(s)
	scheme := strings.ToLower(s[:schemeLen(s)-3])
	if !proxySchemes[scheme] {
		return nil, validationError("proxy", "proxy %q: unsupported scheme %q%s", shown, scheme, proxyFormsHint)
	}
	// url.Parse's own error echoes the input, password included, so it is
	// replaced by a message built from the redacted form.
	u, err := url.Parse(s)
	if err != nil {
		return nil, validationError("proxy", "proxy %q is not a valid URL%s", shown, proxyFormsHint)
	}
	if u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, validationError("proxy", "proxy %q must not have a path, query or fragment", shown)
	}
	host, port, perr := splitProxyHostPort(u.Host)
	if perr != nil {
		return nil, validationError("proxy", "proxy %q: %s%s", shown, perr.msg, proxyFormsHint)
	}
	out := &url.URL{Scheme: scheme, Host: joinProxyHostPort(host, port)}
	if u.User != nil {
		name := u.User.Username()
		pass, hasPass := u.User.Password()
		if name == "" {
			return nil, validationError("proxy", "proxy %q: empty user name", shown)
		}
		if hasPass {
			out.User = url.UserPassword(name, pass)
		} else {
			out.User = url.User(name)
		}
	}
	return out, nil
}

// parseProxyColon handles host:port and host:port:user:pass, with the host
// optionally a bracketed IPv6 address.
func parseProxyColon(s string) (*url.URL, error) {
	shown := redactProxyInput(s)
	var hostport string
	var rest []string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return nil, validationError("proxy", "proxy %q: missing ']' after IPv6 address%s", shown, proxyFormsHint)
		}
		// parts[0] is what follows ']' before the first colon; it must be empty.
		parts := strings.Split(s[end+1:], ":")
		if len(parts) < 2 {
			return nil, validationError("proxy", "proxy %q: missing port%s", shown, proxyFormsHint)
		}
		if parts[0] != "" {
			return nil, validationError("proxy", "proxy %q: unexpected text after IPv6 address%s", shown, proxyFormsHint)
		}
		hostport = s[:end+1] + ":" + parts[1]
		rest = parts[2:]
	} else {
		parts := strings.Split(s, ":")
		if len(parts) < 2 {
			return nil, validationError("proxy", "proxy %q: missing port%s", shown, proxyFormsHint)
		}
		hostport = parts[0] + ":" + parts[1]
		rest = parts[2:]
	}
	switch {
	case strings.HasPrefix(s, "::"):
		return nil, validationError("proxy", "proxy %q: too many colons (put an IPv6 address in brackets)%s", shown, proxyFormsHint)
	case len(rest) > 2:
		return nil, validationError("proxy", "proxy %q: too many colons, got %d fields%s", shown, len(rest)+2, proxyFormsHint)
	case len(rest) == 1:
		return nil, validationError("proxy", "proxy %q: got 3 fields%s", shown, proxyFormsHint)
	}
	host, port, perr := splitProxyHostPort(hostport)
	if perr != nil {
		return nil, validationError("proxy", "proxy %q: %s%s", shown, perr.msg, proxyFormsHint)
	}
	out := &url.URL{Scheme: "http", Host: joinProxyHostPort(host, port)}
	if len(rest) == 2 {
		if rest[0] == "" || rest[1] == "" {
			return nil, validationError("proxy", "proxy %q: empty user name or password", shown)
		}
		out.User = url.UserPassword(rest[0], rest[1])
	}
	return out, nil
}

type proxyParseError struct{ msg string }

// splitProxyHostPort checks a host:port (host possibly bracketed IPv6) and
// returns the host without brackets, lower-cased, and the port.
func splitProxyHostPort(hp string) (host, port string, _ *proxyParseError) {
	if hp == "" {
		return "", "", &proxyParseError{"empty host"}
	}
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", "", &proxyParseError{"missing ']' after IPv6 address"}
		}
		host = hp[1:end]
		after := hp[end+1:]
		if after == "" {
			return "", "", &proxyParseError{"missing port"}
		}
		if after[0] != ':' {
			return "", "", &proxyParseError{"unexpected text after IPv6 address"}
		}
		port = after[1:]
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() {
			return "", "", &proxyParseError{"bad IPv6 address"}
		}
	} else {
		i := strings.LastIndexByte(hp, ':')
		if i < 0 {
			return "", "", &proxyParseError{"missing port"}
		}
		host, port = hp[:i], hp[i+1:]
		if strings.IndexByte(host, ':') >= 0 {
			return "", "", &proxyParseError{"too many colons (put an IPv6 address in brackets)"}
		}
		if host == "" {
			return "", "", &proxyParseError{"empty host"}
		}
		if !validHostname(host) {
			return "", "", &proxyParseError{"bad host name"}
		}
	}
	if port == "" {
		return "", "", &proxyParseError{"missing port"}
	}
	if !validPort(port) {
		return "", "", &proxyParseError{"bad port (must be 1-65535)"}
	}
	if !strings.Contains(host, "%") { // IPv6 zones are case-sensitive interface names
		host = strings.ToLower(host)
	}
	return host, port, nil
}

func joinProxyHostPort(host, port string) string {
	if strings.IndexByte(host, ':') >= 0 {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}

// validHostname accepts DNS names, IPv4 addresses and non-ASCII (IDN) names,
// and rejects characters that would change the URL's meaning ('@', '/', ...).
func validHostname(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c >= 0x80:
		default:
			return false
		}
	}
	return true
}

func validPort(p string) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n >= 1 && n <= 65535
}

// redactProxyInput renders a proxy address, possibly malformed, for an
// error message with the password replaced by "xxxxx". It works on the raw
// text because url.URL.Redacted needs a URL that parsed, and it errs on the
// side of hiding too much: with an '@' it keeps the user only when the text
// before the last '@' is a plain user:pass, and without one it hides every
// field from the fourth on (the password of host:port:user:pass).
func redactProxyInput(s string) string {
	n := schemeLen(s)
	scheme, rest := s[:n], s[n:]
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		userinfo := rest[:at]
		switch strings.Count(userinfo, ":") {
		case 0:
			return s
		case 1:
			return scheme + userinfo[:strings.IndexByte(userinfo, ':')] + ":xxxxx@" + rest[at+1:]
		default:
			return scheme + userinfo[:strings.IndexByte(userinfo, ':')] + ":xxxxx"
		}
	}
	// An IPv6 host leaves ":port:user:pass", which splits like "host:port:...".
	head := scheme
	if strings.HasPrefix(rest, "[") {
		if end := strings.IndexByte(rest, ']'); end >= 0 {
			head, rest = head+rest[:end+1], rest[end+1:]
		}
	}
	parts := strings.SplitN(rest, ":", 4) // host, port, user, pass...
	if len(parts) < 4 {
		return s
	}
	return head + strings.Join(parts[:3], ":") + ":xxxxx"
}

// ProxyPool rotates requests over a set of proxies and benches failed ones
// for a cooldown. It is safe for concurrent use. Policy methods take the
// current time as an argument so that tests can use synthetic clocks.
//
// Next returns the pool's own *url.URL values: callers must not modify them.
// Sharing them keeps Next free of allocations, and lets MarkFailed and
// MarkSucceeded find a proxy by pointer before falling back to its String
// form.
type ProxyPool struct {
	proxies  []*url.URL
	byKey    map[string]int   // String() form -> index; read-only after construction
	byPtr    map[*url.URL]int // the pool's own pointers -> index; read-only
	random   bool
	cooldown time.Duration

	mu     sync.Mutex
	until  []time.Time // end of each proxy's cooldown; zero or past = usable
	cursor int         // round robin: index of the next proxy to try
	rng    *rand.Rand  // random selection; guarded by mu
}

// NewProxyPool builds a pool from proxy addresses in any form ParseProxy
// accepts. selection is "round_robin" or "random" ("" means round_robin, as
// in ClientConfig); cooldown is how long a failed proxy sits out (0: never).
// Empty entries are skipped and duplicates (same String form) are dropped,
// keeping the first-seen order so round robin follows the user's list. A
// pool with no proxies is a configuration error: a client that asked for
// proxies must not silently go direct.
func NewProxyPool(addrs []string, selection string, cooldown time.Duration) (*ProxyPool, error) {
	p := &ProxyPool{cooldown: cooldown}
	switch selection {
	case "", "round_robin":
	case "random":
		p.random = true
		p.rng = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	default:
		return nil, configError("proxy_selection", "proxy_selection must be \"round_robin\" or \"random\", got %q", selection)
	}
	if cooldown < 0 {
		return nil, configError("proxy_cooldown", "proxy_cooldown must be >= 0, got %v", cooldown)
	}
	p.byKey = make(map[string]int, len(addrs))
	for i, a := range addrs {
		if strings.TrimSpace(a) == "" {
			continue
		}
		u, err := ParseProxy(a)
		if err != nil {
			if e, ok := err.(*Error); ok {
				e.Message = "proxy list entry " + strconv.Itoa(i+1) + ": " + e.Message
			}
			return nil, err
		}
		key := u.String()
		if _, dup := p.byKey[key]; dup {
			continue
		}
		p.byKey[key] = len(p.proxies)
		p.proxies = append(p.proxies, u)
	}
	if len(p.proxies) == 0 {
		return nil, configError("proxies", "the proxy pool is empty: give proxies, a webshare_file or FASTREQ_PROXIES")
	}
	p.byPtr = make(map[*url.URL]int, len(p.proxies))
	for i, u := range p.proxies {
		p.byPtr[u] = i
	}
	p.until = make([]time.Time, len(p.proxies))
	return p, nil
}

// LoadProxySources gathers the pool's addresses in order: the explicit
// list, then the lines of webshareFile (host:port:user:pass, one per line;
// blank lines and # comments skipped), then, if includeEnv, the
// comma-separated FASTREQ_PROXIES read through getenv (nil means
// os.Getenv). The addresses are not parsed here; NewProxyPool does that. A
// webshare file that cannot be read is a configuration error with field
// "webshare_file", since the user asked for it explicitly.
func LoadProxySources(explicit []string, webshareFile string, includeEnv bool, getenv func(string) string) ([]string, error) {
	out := make([]string, 0, len(explicit))
	for _, a := range explicit {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	if webshareFile != "" {
		data, err := os.ReadFile(webshareFile)
		if err != nil {
			return nil, configError("webshare_file", "cannot read webshare_file: %v", err)
		}
		text := strings.TrimPrefix(string(data), "\uFEFF") // editors on Windows add a BOM
		for line := range strings.Lines(text) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			out = append(out, line)
		}
	}
	if includeEnv {
		if getenv == nil {
			getenv = os.Getenv
		}
		for a := range strings.SplitSeq(getenv("FASTREQ_PROXIES"), ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// Len returns the number of distinct proxies in the pool.
func (p *ProxyPool) Len() int {
	if p == nil {
		return 0
	}
	return len(p.proxies)
}

// Next picks the proxy for the next attempt at time now, skipping proxies
// that are cooling down. If every proxy is cooling down it returns the one
// whose cooldown ends first rather than nil: going direct would leak the
// caller's own address. It returns nil only for a nil or empty pool. Round
// robin follows the pool's order; random picks uniformly among the usable
// proxies. The result is shared and must not be modified.
func (p *ProxyPool) Next(now time.Time) *url.URL {
	n := p.Len()
	if n == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.random {
		return p.proxies[p.nextRandom(n, now)]
	}
	return p.proxies[p.nextRoundRobin(n, now)]
}

// usable reports whether proxy i may be used at now. Caller holds mu.
func (p *ProxyPool) usable(i int, now time.Time) bool {
	return !now.Before(p.until[i])
}

func (p *ProxyPool) nextRoundRobin(n int, now time.Time) int {
	earliest := -1
	for k := 0; k < n; k++ {
		i := p.cursor + k
		if i >= n {
			i -= n
		}
		if p.usable(i, now) {
			p.cursor = i + 1
			if p.cursor == n {
				p.cursor = 0
			}
			return i
		}
		if earliest < 0 || p.until[i].Before(p.until[earliest]) {
			earliest = i
		}
	}
	return earliest
}

func (p *ProxyPool) nextRandom(n int, now time.Time) int {
	// Rejection sampling: a few uniform draws almost always hit a usable
	// proxy in O(1), and the accepted draw is uniform over usable proxies.
	for try := 0; try < 4; try++ {
		i := p.rng.IntN(n)
		if p.usable(i, now) {
			return i
		}
	}
	// Most proxies are cooling: count the usable ones and pick one of them.
	usable, earliest := 0, -1
	for i := 0; i < n; i++ {
		if p.usable(i, now) {
			usable++
		} else if earliest < 0 || p.until[i].Before(p.until[earliest]) {
			earliest = i
		}
	}
	if usable == 0 {
		return earliest
	}
	k := p.rng.IntN(usable)
	for i := 0; i < n; i++ {
		if p.usable(i, now) {
			if k == 0 {
				return i
			}
			k--
		}
	}
	return earliest // unreachable
}

// index finds proxy u in the pool: by pointer for the pool's own values,
// else by String form. It returns -1 for a proxy not in the pool.
func (p *ProxyPool) index(u *url.URL) int {
	if p.Len() == 0 || u == nil {
		return -1
	}
	if i, ok := p.byPtr[u]; ok {
		return i
	}
	if i, ok := p.byKey[u.String()]; ok {
		return i
	}
	return -1
}

// MarkFailed starts (or extends) the cooldown of proxy u at time now, so
// that Next avoids it until now+cooldown. Unknown proxies are ignored, and
// so is every call when the cooldown is 0.
func (p *ProxyPool) MarkFailed(u *url.URL, now time.Time) {
	if p == nil || p.cooldown <= 0 {
		return
	}
	i := p.index(u)
	if i < 0 {
		return
	}
	end := now.Add(p.cooldown)
	p.mu.Lock()
	if end.After(p.until[i]) {
		p.until[i] = end
	}
	p.mu.Unlock()
}

// MarkSucceeded ends the cooldown of proxy u: a proxy that works again
// should rejoin the rotation at once. Unknown proxies are ignored.
func (p *ProxyPool) MarkSucceeded(u *url.URL) {
	i := p.index(u)
	if i < 0 {
		return
	}
	p.mu.Lock()
	p.until[i] = time.Time{}
	p.mu.Unlock()
}
