// Package benchcli is what the benchmark's Go clients (goclient, gofloor)
// share: the command line every client of tests/bench obeys, the JSON line
// it prints (the format of tests/bench/clients/_common.py) and the rule
// that spreads requests over loopback hosts.
package benchcli

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"syscall"
)

// Flags is the command line of a benchmark client:
//
//	-url URL -n N -c CONCURRENCY -mode json|bytes|rate|serial|storm [-rate R] [-proto h1|h2c|h2]
//	[-hosts H] [-retries R]
type Flags struct {
	URL     string
	N       int
	Conc    int
	Mode    string
	Rate    float64
	Proto   string
	Hosts   int
	Retries int
}

// Parse reads the command line; prog names the client in error messages.
func Parse(prog string) Flags {
	var f Flags
	flag.StringVar(&f.URL, "url", "", "URL to GET")
	flag.IntVar(&f.N, "n", 1000, "number of requests")
	flag.IntVar(&f.Conc, "c", 64, "concurrency")
	flag.StringVar(&f.Mode, "mode", "json", "json, bytes, rate, serial or storm")
	flag.Float64Var(&f.Rate, "rate", 0, "requests per second for mode rate")
	flag.StringVar(&f.Proto, "proto", "h1", "h1, h2c (prior knowledge) or h2 (TLS, ALPN)")
	flag.IntVar(&f.Hosts, "hosts", 0, "spread the requests over this many loopback hosts 127.0.X.Y (0: the URL's)")
	flag.IntVar(&f.Retries, "retries", 0, "retries per request (mode storm; other modes make none)")
	flag.Parse()
	if f.URL == "" {
		Exit(prog, 2, "-url is required")
	}
	return f
}

// Exit prints "prog: msg" on stderr and exits with code.
func Exit(prog string, code int, msg ...any) {
	fmt.Fprintln(os.Stderr, append([]any{prog + ":"}, msg...)...)
	os.Exit(code)
}

// Result is the JSON line a client prints last on stdout.
type Result struct {
	Client       string   `json:"client"`
	Version      string   `json:"version"`
	OK           int      `json:"ok"`
	Failed       int      `json:"failed"`
	Elapsed      float64  `json:"elapsed"`
	Bytes        int64    `json:"bytes"`
	Kept         int      `json:"kept"`
	CPUWork      float64  `json:"cpu_work_s"`
	P50ms        *float64 `json:"p50_ms,omitempty"`
	P99ms        *float64 `json:"p99_ms,omitempty"`
	MeanMs       *float64 `json:"mean_ms,omitempty"`
	AchievedRate *float64 `json:"achieved_rate,omitempty"`
	Attempts     *int     `json:"attempts,omitempty"`
	Info         string   `json:"info,omitempty"`
	Errors       []string `json:"errors,omitempty"`
}

// AddError counts a failed request, keeping the first few messages.
func (r *Result) AddError(err error) {
	r.Failed++
	if len(r.Errors) < 5 {
		r.Errors = append(r.Errors, err.Error())
	}
}

// SetLatencies fills p50, p99 and the mean from per-request latencies in
// milliseconds (sorting lat); nothing when there are none.
func (r *Result) SetLatencies(lat []float64) {
	if len(lat) == 0 {
		return
	}
	sort.Float64s(lat)
	p50, p99 := Percentile(lat, 50), Percentile(lat, 99)
	sum := 0.0
	for _, v := range lat {
		sum += v
	}
	mean := sum / float64(len(lat))
	r.P50ms, r.P99ms, r.MeanMs = &p50, &p99, &mean
}

// Finish adds what the mode reports (the achieved rate of mode rate, the
// latencies of mode serial: none when lat is empty) and prints the line.
func (r *Result) Finish(mode string, lat []float64) {
	if mode == "rate" && r.Elapsed > 0 {
		rate := float64(r.OK) / r.Elapsed
		r.AchievedRate = &rate
	}
	r.SetLatencies(lat)
	r.Print()
}

// Print writes the JSON line.
func (r *Result) Print() {
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
}

// HostURLs returns n copies of base (a URL on 127.0.0.1, http or https)
// spread over hosts loopback addresses: request i goes to host k = i %
// hosts, 127.0.(1 + k/250).(1 + k%250), the rule of _common.host_urls.
// Nothing outside 127.0.0.0/8 can come out of it.
func HostURLs(base string, n, hosts int) ([]string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Hostname() != "127.0.0.1" {
		return nil, fmt.Errorf("-hosts needs a URL on 127.0.0.1, got %q", u.Hostname())
	}
	if hosts < 1 || hosts > 250*254 {
		return nil, fmt.Errorf("-hosts must be 1..%d", 250*254)
	}
	port := u.Port()
	byHost := make([]string, hosts)
	for k := range byHost {
		v := *u
		v.Host = net.JoinHostPort(fmt.Sprintf("127.0.%d.%d", 1+k/250, 1+k%250), port)
		byHost[k] = v.String()
	}
	out := make([]string, n)
	for i := range out {
		out[i] = byHost[i%hosts]
	}
	return out, nil
}

// Nofile describes the descriptor limit this process runs with (the Go
// runtime raises the soft limit to the hard one at start).
func Nofile() string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return "nofile ?"
	}
	return fmt.Sprintf("nofile %d/%d (Go raises the soft limit at start)", lim.Cur, lim.Max)
}

// CPUSeconds is the user and system time of the process so far.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// Percentile is the nearest-rank percentile of sorted values, the rule of
// _common.py.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(p/100*float64(len(sorted))+0.999999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(sorted) {
		k = len(sorted) - 1
	}
	return sorted[k]
}
