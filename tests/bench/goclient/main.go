// Command goclient is the benchmark's Go-native client: the fastreq engine
// (package core) used directly, without the C ABI or Python. It runs one
// workload and prints one JSON line in the format of tests/bench/clients/
// (see _common.py there):
//
//	goclient -url URL -n N -c CONCURRENCY -mode json|bytes|rate|serial|storm [-rate R] [-proto h1|h2c|h2]
//	         [-hosts H] [-retries R]
//
// json: N GETs, every body parsed as JSON (encoding/json into any) and kept;
// bytes: N GETs, every body kept; rate: N GETs under a rate limit of R/s;
// serial: N GETs one at a time, with per-request latencies; storm: N GETs
// of a URL where nothing listens, with -retries retries and the engine's
// default backoff, each of which must fail the way it should (then it
// counts as "ok"; see _common.py). -hosts H spreads the requests over H
// loopback hosts (request i goes to host i % H, see hostURLs).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/fastreq/fastreq/core"
)

type result struct {
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

// hostURLs returns n copies of base (an http://127.0.0.1:PORT/... URL)
// spread over hosts loopback addresses: request i goes to host k = i %
// hosts, 127.0.(1 + k/250).(1 + k%250), the rule of _common.host_urls.
// Nothing outside 127.0.0.0/8 can come out of it.
func hostURLs(base string, n, hosts int) ([]string, error) {
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

// nofile describes the descriptor limit this process runs with (the Go
// runtime raises the soft limit to the hard one at start).
func nofile() string {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return "nofile ?"
	}
	return fmt.Sprintf("nofile %d/%d (Go raises the soft limit at start)", lim.Cur, lim.Max)
}

// hasOption reports whether core.ClientConfig knows the JSON setting name.
func hasOption(name string) bool {
	dec := json.NewDecoder(bytes.NewReader([]byte(`{"` + name + `":0}`)))
	dec.DisallowUnknownFields()
	var cfg core.ClientConfig
	err := dec.Decode(&cfg)
	return err == nil || !bytes.Contains([]byte(err.Error()), []byte("unknown field"))
}

// stormFailure reports whether a failed request of mode storm failed the
// way it should: without an answer, for a reason that is not ours (a bad
// request, a cancelled batch, ...).
func stormFailure(e *core.Error) bool {
	switch e.Kind {
	case core.KindValidation, core.KindConfiguration, core.KindCancelled, core.KindIO, core.KindTLS,
		core.KindTooManyRedirects, core.KindBodyTooLarge, core.KindHTTPStatus, core.KindProxy:
		return false
	case core.KindRetriesExhausted:
		return e.Last == nil || stormFailure(e.Last)
	}
	return true
}

func kindOf(e *core.Error) string {
	if e.Kind == core.KindRetriesExhausted && e.Last != nil {
		return string(e.Kind) + "(" + string(e.Last.Kind) + ")"
	}
	return string(e.Kind)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	// nearest-rank, the same as _common.py
	k := int(p/100*float64(len(sorted))+0.999999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(sorted) {
		k = len(sorted) - 1
	}
	return sorted[k]
}

func main() {
	url := flag.String("url", "", "URL to GET")
	n := flag.Int("n", 1000, "number of requests")
	conc := flag.Int("c", 64, "concurrency")
	mode := flag.String("mode", "json", "json, bytes, rate or serial")
	rateLimit := flag.Float64("rate", 0, "requests per second for mode rate")
	proto := flag.String("proto", "h1", "h1, h2c (prior knowledge) or h2 (TLS, ALPN)")
	hosts := flag.Int("hosts", 0, "spread the requests over this many loopback hosts 127.0.X.Y (0: the URL's)")
	retries := flag.Int("retries", 0, "retries per request (mode storm; other modes make none)")
	flag.Parse()
	if *url == "" {
		fmt.Fprintln(os.Stderr, "goclient: -url is required")
		os.Exit(2)
	}

	// The settings go through the config's JSON form (the names of the
	// Python API), so this keeps compiling whether a field is a bool or a
	// *bool in core.ClientConfig.
	settings := map[string]any{
		"concurrency": *conc,
		"max_retries": 0,
		"verify_ssl":  false,
		"verbose":     false,
	}
	switch *proto {
	case "h1":
		settings["http2"] = false
	case "h2c":
		settings["backend"] = "http2" // h2c with prior knowledge
	case "h2":
		settings["http2"] = true // h2 by ALPN
	default:
		fmt.Fprintf(os.Stderr, "goclient: unknown -proto %q\n", *proto)
		os.Exit(2)
	}
	if *mode == "rate" {
		settings["rate_limit"] = *rateLimit
	}
	if *mode == "serial" {
		settings["concurrency"] = 1
	}
	if *mode == "storm" {
		// the engine's defaults for everything else: backoff_multiplier 1 s,
		// jitter 0.1, max_delay 60 s and, where the engine has one, its
		// circuit breaker
		settings["max_retries"] = *retries
	}
	cfg := core.DefaultClientConfig()
	raw, _ := json.Marshal(settings)
	if err := json.Unmarshal(raw, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "goclient: config:", err)
		os.Exit(1)
	}
	client, err := core.NewClient(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "goclient:", err)
		os.Exit(1)
	}
	defer client.Close()

	out := result{Client: "go-core", Version: core.Version + " " + runtime.Version(), Info: nofile()}
	if *mode == "storm" {
		if hasOption("circuit_breaker_threshold") {
			out.Info += "; circuit_breaker_threshold: engine default"
		} else {
			out.Info += "; no circuit_breaker_threshold in this core"
		}
	}
	urls := []string{}
	if *hosts > 0 {
		var err error
		if urls, err = hostURLs(*url, *n, *hosts); err != nil {
			fmt.Fprintln(os.Stderr, "goclient:", err)
			os.Exit(2)
		}
		out.Info += "; " + strconv.Itoa(*hosts) + " hosts"
	}
	attempts := 0
	kinds := map[string]int{}
	ctx := context.Background()
	var keptJSON []any
	var keptBytes [][]byte
	var lat []float64
	addErr := func(e error) {
		out.Failed++
		if len(out.Errors) < 5 {
			out.Errors = append(out.Errors, e.Error())
		}
	}
	keep := func(r *core.NormalizedResponse) {
		if *mode == "storm" {
			attempts += r.Attempts
			switch {
			case r.Error == nil:
				addErr(fmt.Errorf("status %d from a port where nothing should listen", r.StatusCode))
			case !stormFailure(r.Error):
				addErr(r.Error)
			default:
				out.OK++
				kinds[kindOf(r.Error)]++
			}
			return
		}
		if r.Error != nil {
			addErr(r.Error)
			return
		}
		if r.StatusCode != 200 {
			addErr(fmt.Errorf("status %d", r.StatusCode))
			return
		}
		out.OK++
		if *mode == "bytes" {
			out.Bytes += int64(len(r.Content))
			keptBytes = append(keptBytes, r.Content)
			return
		}
		var v any
		if err := json.Unmarshal(r.Content, &v); err != nil {
			out.OK--
			addErr(err)
			return
		}
		keptJSON = append(keptJSON, v)
	}

	cpu0 := cpuSeconds()
	t0 := time.Now()
	switch *mode {
	case "json", "bytes", "rate", "storm":
		reqs := make([]core.RequestConfig, *n)
		for i := range reqs {
			if len(urls) > 0 {
				reqs[i].URL = urls[i]
			} else {
				reqs[i].URL = *url
			}
		}
		keptJSON = make([]any, 0, *n)
		b, err := client.Submit(ctx, reqs, core.BatchOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "goclient:", err)
			os.Exit(1)
		}
		for _, r := range b.Wait() {
			keep(r)
		}
	case "serial":
		lat = make([]float64, 0, *n)
		for i := 0; i < *n; i++ {
			s := time.Now()
			r, _ := client.Do(ctx, core.RequestConfig{URL: *url})
			if r == nil {
				addErr(fmt.Errorf("no response"))
				continue
			}
			keep(r)
			lat = append(lat, float64(time.Since(s))/1e6)
		}
	default:
		fmt.Fprintf(os.Stderr, "goclient: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
	out.Elapsed = time.Since(t0).Seconds()
	out.CPUWork = cpuSeconds() - cpu0
	out.Kept = len(keptJSON) + len(keptBytes)
	if *mode == "storm" {
		out.Attempts = &attempts
		ks := make([]string, 0, len(kinds))
		for k := range kinds {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			out.Info += fmt.Sprintf("; %s x%d", k, kinds[k])
		}
	}
	if *mode == "rate" && out.Elapsed > 0 {
		r := float64(out.OK) / out.Elapsed
		out.AchievedRate = &r
	}
	if len(lat) > 0 {
		sort.Float64s(lat)
		p50, p99 := percentile(lat, 50), percentile(lat, 99)
		sum := 0.0
		for _, v := range lat {
			sum += v
		}
		mean := sum / float64(len(lat))
		out.P50ms, out.P99ms, out.MeanMs = &p50, &p99, &mean
	}
	line, _ := json.Marshal(out)
	fmt.Println(string(line))
	runtime.KeepAlive(keptJSON)
	runtime.KeepAlive(keptBytes)
}
