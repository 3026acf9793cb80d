package core

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// t0 is the synthetic clock origin of the pool tests.
var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func TestParseProxyAccepted(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"1.2.3.4:8080", "http://1.2.3.4:8080"},
		{"proxy.example.com:3128", "http://proxy.example.com:3128"},
		{"  Proxy.Example.COM:3128 \r\n", "http://proxy.example.com:3128"},
		{"1.2.3.4:8080:user:pass", "http://user:pass@1.2.3.4:8080"},
		{"p.example.com:65535:user-1:p4ss_w0rd", "http://user-1:p4ss_w0rd@p.example.com:65535"},
		{"[::1]:8080", "http://[::1]:8080"},
		{"[2001:db8::1]:3128:user:pass", "http://user:pass@[2001:db8::1]:3128"},
		{"http://1.2.3.4:8080", "http://1.2.3.4:8080"},
		{"http://user:pass@1.2.3.4:8080", "http://user:pass@1.2.3.4:8080"},
		{"HTTP://Host.example:80/", "http://host.example:80"},
		{"http://user@host:8080", "http://user@host:8080"},
		{"http://[::1]:8080", "http://[::1]:8080"},
		{"https://user:p%40ss@secure.example:443", "https://user:p%40ss@secure.example:443"},
		{"socks5://host:1080", "socks5://host:1080"},
		{"socks5://user:pass@host:1080", "socks5://user:pass@host:1080"},
		{"socks5://[2001:db8::2]:1080", "socks5://[2001:db8::2]:1080"},
		{"socks5h://user:pass@host:1080", "socks5h://user:pass@host:1080"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ParseProxy(tt.in)
			if err != nil {
				t.Fatalf("ParseProxy(%q): %v", tt.in, err)
			}
			if got := u.String(); got != tt.want {
				t.Fatalf("ParseProxy(%q) = %q, want %q", tt.in, got, tt.want)
			}
			// The result must survive a round trip, as the transports re-parse it.
			back, err := url.Parse(u.String())
			if err != nil || back.String() != tt.want {
				t.Fatalf("round trip of %q: %v, %v", tt.want, back, err)
			}
		})
	}
}

func TestParseProxyEscapesCredentials(t *testing.T) {
	u, err := ParseProxy("h.example:1:us er:p@ss/w")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.String(), "http://us%20er:p%40ss%2Fw@h.example:1"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	back, err := url.Parse(u.String())
	if err != nil {
		t.Fatal(err)
	}
	if pass, _ := back.User.Password(); back.User.Username() != "us er" || pass != "p@ss/w" || back.Host != "h.example:1" {
		t.Fatalf("round trip lost the credentials: %v %q", back.User, back.Host)
	}
}

func TestParseProxyRejected(t *testing.T) {
	const secret = "s3cretPW"
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"blank", "   "},
		{"missing port", "1.2.3.4"},
		{"missing port after colon", "1.2.3.4:"},
		{"missing port with scheme", "http://user:" + secret + "@host.example"},
		{"missing port ipv6", "[::1]"},
		{"zero port", "1.2.3.4:0"},
		{"port too big", "1.2.3.4:65536:user:" + secret},
		{"port not a number", "1.2.3.4:80a:user:" + secret},
		{"negative port", "1.2.3.4:-1"},
		{"plus port", "1.2.3.4:+80"},
		{"bad port with scheme", "socks5://user:" + secret + "@host:99999"},
		{"unknown scheme ftp", "ftp://user:" + secret + "@host:21"},
		{"unknown scheme socks4", "socks4://host:1080"},
		{"empty host", ":8080"},
		{"empty host webshare", ":8080:user:" + secret},
		{"empty host with scheme", "http://user:" + secret + "@:8080"},
		{"three fields", "1.2.3.4:8080:user"},
		{"too many colons", "1.2.3.4:8080:user:" + secret + ":extra"},
		{"unbracketed ipv6", "::1:8080"},
		{"unbracketed ipv6 with scheme", "http://user:" + secret + "@::1:8080"},
		{"empty password", "1.2.3.4:8080:user:"},
		{"empty user", "1.2.3.4:8080::" + secret},
		{"empty user with scheme", "http://:" + secret + "@host:8080"},
		{"path", "http://user:" + secret + "@host:8080/path"},
		{"query", "http://user:" + secret + "@host:8080?x=1"},
		{"bad escape", "socks5://user:" + secret + "%zz@host:1080"},
		{"bad host char", "ho st:8080:user:" + secret},
		{"bad ipv6", "[::zz]:8080:user:" + secret},
		{"user:pass@host without scheme", "user:" + secret + "@host:8080"},
		{"password with slash in URL", "http://user:" + secret + "/x@host:8080x"},
		{"mixed forms", "http://host:8080:user:" + secret},
		{"password with at in bad webshare line", "host:99999:user:" + secret + "@x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseProxy(tt.in)
			if err == nil {
				t.Fatalf("ParseProxy(%q) = %v, want an error", tt.in, u)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error", err)
			}
			if e.Kind != KindValidation || e.Field != "proxy" {
				t.Fatalf("error kind/field = %s/%s, want validation/proxy", e.Kind, e.Field)
			}
			if strings.Contains(e.Error(), secret) || strings.Contains(e.Error(), secret[:4]) {
				t.Fatalf("error message leaks the password: %s", e.Error())
			}
		})
	}
}

func TestRedactProxyInputKeepsHost(t *testing.T) {
	// Hiding the password must not hide what the user needs to find the entry.
	tests := map[string]string{
		"1.2.3.4:8080:user:pw":       "1.2.3.4:8080:user:xxxxx",
		"[::1]:8080:user:pw":         "[::1]:8080:user:xxxxx",
		"http://user:pw@host:1":      "http://user:xxxxx@host:1",
		"socks5://user:p:w@host:1":   "socks5://user:xxxxx",
		"host:1:user:p@w":            "host:xxxxx",
		"ftp://host:21":              "ftp://host:21",
		"1.2.3.4":                    "1.2.3.4",
		"http://host:8080:user:pw":   "http://host:8080:user:xxxxx",
		"host:8080:user:pw:and:more": "host:8080:user:xxxxx",
	}
	for in, want := range tests {
		if got := redactProxyInput(in); got != want {
			t.Errorf("redactProxyInput(%q) = %q, want %q", in, got, want)
		}
	}
}

func mustPool(t testing.TB, addrs []string, selection string, cooldown time.Duration) *ProxyPool {
	t.Helper()
	p, err := NewProxyPool(addrs, selection, cooldown)
	if err != nil {
		t.Fatalf("NewProxyPool: %v", err)
	}
	return p
}

func nextHosts(p *ProxyPool, now time.Time, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = p.Next(now).Host
	}
	return out
}

func TestProxyPoolRoundRobin(t *testing.T) {
	p := mustPool(t, []string{"a:1", "b:1", "c:1"}, "round_robin", time.Minute)
	got := strings.Join(nextHosts(p, t0, 7), " ")
	if want := "a:1 b:1 c:1 a:1 b:1 c:1 a:1"; got != want {
		t.Fatalf("order %q, want %q", got, want)
	}
	// "" means round_robin, as in ClientConfig.
	p = mustPool(t, []string{"a:1", "b:1"}, "", 0)
	if got := strings.Join(nextHosts(p, t0, 3), " "); got != "a:1 b:1 a:1" {
		t.Fatalf("default selection order %q", got)
	}
}

func TestProxyPoolDedupe(t *testing.T) {
	p := mustPool(t, []string{
		"b:1", "", "  ", "a:1", "http://b:1", "HTTP://B:1/", "a:1:user:pw", "http://user:pw@a:1", "c:1", "a:1",
	}, "round_robin", 0)
	if p.Len() != 4 {
		t.Fatalf("Len = %d, want 4", p.Len())
	}
	var got []string
	for range 4 {
		got = append(got, p.Next(t0).String())
	}
	want := []string{"http://b:1", "http://a:1", "http://user:pw@a:1", "http://c:1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("pool order %v, want first-seen order %v", got, want)
	}
}

func TestProxyPoolRandomCoversAll(t *testing.T) {
	addrs := []string{"a:1", "b:1", "c:1", "d:1", "e:1"}
	p := mustPool(t, addrs, "random", time.Minute)
	seen := map[string]int{}
	for range 5000 {
		seen[p.Next(t0).Host]++
	}
	for _, a := range addrs {
		// Expected 1000 each; 700 is far outside any plausible variation.
		if seen[a] < 700 {
			t.Fatalf("random selection is skewed or incomplete: %v", seen)
		}
	}
	// With some proxies cooling, random still covers exactly the others.
	for _, a := range []string{"a:1", "b:1", "c:1"} {
		u, _ := ParseProxy(a)
		p.MarkFailed(u, t0)
	}
	seen = map[string]int{}
	for range 2000 {
		seen[p.Next(t0.Add(time.Second)).Host]++
	}
	for h := range seen {
		if h == "a:1" || h == "b:1" || h == "c:1" {
			t.Fatalf("random picked cooling proxy %s: %v", h, seen)
		}
	}
	if len(seen) == 0 {
		t.Fatal("no proxy picked")
	}
}

func TestProxyPoolCooldownSkip(t *testing.T) {
	for _, sel := range []string{"round_robin", "random"} {
		t.Run(sel, func(t *testing.T) {
			p := mustPool(t, []string{"a:1", "b:1", "c:1"}, sel, time.Minute)
			b, _ := ParseProxy("b:1") // a fresh URL: matched by String form
			p.MarkFailed(b, t0)
			for i := range 30 {
				if got := p.Next(t0.Add(time.Duration(i) * time.Second)).Host; got == "b:1" {
					t.Fatalf("cooling proxy b picked at +%ds", i)
				}
			}
			// At the end of the cooldown, b is back.
			seen := false
			for range 100 {
				if p.Next(t0.Add(time.Minute)).Host == "b:1" {
					seen = true
				}
			}
			if !seen {
				t.Fatal("b did not return after its cooldown")
			}
		})
	}
	// Round robin keeps its order around a cooling proxy.
	p := mustPool(t, []string{"a:1", "b:1", "c:1"}, "round_robin", time.Minute)
	b, _ := ParseProxy("b:1")
	p.MarkFailed(b, t0)
	if got := strings.Join(nextHosts(p, t0.Add(time.Second), 4), " "); got != "a:1 c:1 a:1 c:1" {
		t.Fatalf("order with b cooling: %q", got)
	}
}

func TestProxyPoolAllCoolingReturnsEarliest(t *testing.T) {
	for _, sel := range []string{"round_robin", "random"} {
		t.Run(sel, func(t *testing.T) {
			p := mustPool(t, []string{"a:1", "b:1", "c:1"}, sel, time.Minute)
			for i, a := range []string{"c:1", "a:1", "b:1"} { // c fails first, so it recovers first
				u, _ := ParseProxy(a)
				p.MarkFailed(u, t0.Add(time.Duration(i)*time.Second))
			}
			for range 10 {
				u := p.Next(t0.Add(10 * time.Second))
				if u == nil {
					t.Fatal("Next returned nil: the caller would go direct")
				}
				if u.Host != "c:1" {
					t.Fatalf("Next = %s, want c:1 (earliest cooldown end)", u.Host)
				}
			}
		})
	}
}

func TestProxyPoolSuccessClears(t *testing.T) {
	p := mustPool(t, []string{"a:1", "b:1"}, "round_robin", time.Hour)
	a := p.Next(t0) // the pool's own pointer
	p.MarkFailed(a, t0)
	if got := strings.Join(nextHosts(p, t0, 3), " "); got != "b:1 b:1 b:1" {
		t.Fatalf("with a cooling: %q", got)
	}
	p.MarkSucceeded(a)
	got := nextHosts(p, t0, 2)
	if !(got[0] == "a:1" || got[1] == "a:1") {
		t.Fatalf("a not back after MarkSucceeded: %v", got)
	}
	// A failure again, then success through a fresh URL with the same String.
	p.MarkFailed(a, t0)
	fresh, _ := url.Parse("http://a:1")
	p.MarkSucceeded(fresh)
	got = nextHosts(p, t0, 2)
	if !(got[0] == "a:1" || got[1] == "a:1") {
		t.Fatalf("a not back after MarkSucceeded(fresh URL): %v", got)
	}
	// Unknown proxies and nil are ignored.
	other, _ := url.Parse("http://zzz:9")
	p.MarkFailed(other, t0)
	p.MarkSucceeded(other)
	p.MarkFailed(nil, t0)
	p.MarkSucceeded(nil)
}

func TestProxyPoolZeroCooldown(t *testing.T) {
	p := mustPool(t, []string{"a:1", "b:1"}, "round_robin", 0)
	p.MarkFailed(p.Next(t0), t0)
	if got := strings.Join(nextHosts(p, t0, 3), " "); got != "b:1 a:1 b:1" {
		t.Fatalf("cooldown 0 must not bench a proxy: %q", got)
	}
}

func TestProxyPoolRepeatedFailureExtends(t *testing.T) {
	p := mustPool(t, []string{"a:1", "b:1"}, "round_robin", time.Minute)
	a, _ := ParseProxy("a:1")
	p.MarkFailed(a, t0)
	p.MarkFailed(a, t0.Add(30*time.Second)) // now cooling until t0+90s
	p.MarkFailed(a, t0)                     // an older report must not shorten it
	for range 4 {
		if p.Next(t0.Add(80*time.Second)).Host == "a:1" {
			t.Fatal("a picked before its extended cooldown ended")
		}
	}
}

func TestNewProxyPoolErrors(t *testing.T) {
	tests := []struct {
		name      string
		addrs     []string
		selection string
		cooldown  time.Duration
		kind      ErrorKind
		field     string
	}{
		{"bad selection", []string{"a:1"}, "weighted", 0, KindConfiguration, "proxy_selection"},
		{"negative cooldown", []string{"a:1"}, "random", -time.Second, KindConfiguration, "proxy_cooldown"},
		{"empty", nil, "round_robin", 0, KindConfiguration, "proxies"},
		{"only blanks", []string{"", " "}, "round_robin", 0, KindConfiguration, "proxies"},
		{"bad entry", []string{"a:1", "b:1:user:s3cretPW:x"}, "round_robin", 0, KindValidation, "proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewProxyPool(tt.addrs, tt.selection, tt.cooldown)
			var e *Error
			if !errors.As(err, &e) || e.Kind != tt.kind || e.Field != tt.field {
				t.Fatalf("err = %v (%#v), want kind %s field %s", err, e, tt.kind, tt.field)
			}
			if strings.Contains(e.Error(), "s3cret") {
				t.Fatalf("error leaks the password: %s", e)
			}
		})
	}
	_, err := NewProxyPool([]string{"a:1", "", "bad"}, "round_robin", 0)
	if err == nil || !strings.Contains(err.Error(), "entry 3") {
		t.Fatalf("error should name the entry: %v", err)
	}
}

func TestProxyPoolNilAndEmpty(t *testing.T) {
	var p *ProxyPool
	if p.Len() != 0 || p.Next(t0) != nil {
		t.Fatal("nil pool should be empty")
	}
	p.MarkFailed(&url.URL{Scheme: "http", Host: "a:1"}, t0)
	p.MarkSucceeded(&url.URL{Scheme: "http", Host: "a:1"})
}

func TestLoadProxySources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "webshare.txt")
	content := "\uFEFF# webshare export\r\n" +
		"1.1.1.1:8001:alice:pw1\r\n" +
		"\r\n" +
		"   \n" +
		"  2.2.2.2:8002:bob:pw2  \n" +
		"#3.3.3.3:8003:carol:pw3\n" +
		"4.4.4.4:8004:dave:pw4" // no final newline
	if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FASTREQ_PROXIES": " socks5://e:1080 ,, 5.5.5.5:80 ,"}
	getenv := func(k string) string { return env[k] }

	got, err := LoadProxySources([]string{"x:1", " ", "y:2"}, file, true, getenv)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"x:1", "y:2", "1.1.1.1:8001:alice:pw1", "2.2.2.2:8002:bob:pw2", "4.4.4.4:8004:dave:pw4", "socks5://e:1080", "5.5.5.5:80"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// The gathered list builds a pool whose webshare entries carry credentials.
	p := mustPool(t, got, "round_robin", 0)
	if p.Len() != len(want) {
		t.Fatalf("pool Len = %d, want %d", p.Len(), len(want))
	}
	p.Next(t0)
	p.Next(t0)
	if u := p.Next(t0); u.String() != "http://alice:pw1@1.1.1.1:8001" {
		t.Fatalf("third proxy = %s", u.Redacted())
	}

	// Without includeEnv the variable is not read.
	got, err = LoadProxySources(nil, "", false, func(string) string { t.Fatal("getenv called"); return "" })
	if err != nil || len(got) != 0 {
		t.Fatalf("got %q, %v; want nothing", got, err)
	}
	// Env alone.
	got, err = LoadProxySources(nil, "", true, getenv)
	if err != nil || strings.Join(got, "|") != "socks5://e:1080|5.5.5.5:80" {
		t.Fatalf("env only: %q, %v", got, err)
	}
}

func TestLoadProxySourcesMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.txt")
	_, err := LoadProxySources(nil, missing, false, nil)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindConfiguration || e.Field != "webshare_file" {
		t.Fatalf("err = %v, want a configuration error on webshare_file", err)
	}
	// A directory cannot be read as a file either.
	_, err = LoadProxySources(nil, t.TempDir(), false, nil)
	if !errors.As(err, &e) || e.Kind != KindConfiguration || e.Field != "webshare_file" {
		t.Fatalf("directory: err = %v, want a configuration error on webshare_file", err)
	}
}

func TestProxyPoolConcurrent(t *testing.T) {
	addrs := make([]string, 50)
	for i := range addrs {
		addrs[i] = "10.0.0." + strconv.Itoa(i+1) + ":8080"
	}
	for _, sel := range []string{"round_robin", "random"} {
		t.Run(sel, func(t *testing.T) {
			p := mustPool(t, addrs, sel, time.Second)
			var wg sync.WaitGroup
			for g := range 32 {
				wg.Go(func() {
					for i := range 2000 {
						now := t0.Add(time.Duration(i) * time.Millisecond)
						u := p.Next(now)
						if u == nil {
							t.Error("Next returned nil")
							return
						}
						switch (g + i) % 3 {
						case 0:
							p.MarkFailed(u, now)
						case 1:
							p.MarkSucceeded(u)
						}
						_ = p.Len()
					}
				})
			}
			wg.Wait()
		})
	}
}

func BenchmarkProxyPoolNext(b *testing.B) {
	addrs := make([]string, 100)
	for i := range addrs {
		addrs[i] = "10.0.0." + strconv.Itoa(i+1) + ":8080:user:pass"
	}
	for _, sel := range []string{"round_robin", "random"} {
		b.Run(sel, func(b *testing.B) {
			p := mustPool(b, addrs, sel, time.Minute)
			// A tenth of the proxies cooling, as in real use.
			for range 10 {
				p.MarkFailed(p.Next(t0), t0)
			}
			now := t0.Add(time.Second)
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Next(now)
			}
		})
	}
	// The per-attempt pair of a successful request must not allocate either.
	b.Run("next_and_succeed", func(b *testing.B) {
		p := mustPool(b, addrs, "round_robin", time.Minute)
		b.ReportAllocs()
		for b.Loop() {
			p.MarkSucceeded(p.Next(t0))
		}
	})
}
