// Command goclient is the benchmark's Go-native client: the fastreq engine
// (package core) used directly, without the C ABI or Python. It runs one
// workload and prints one JSON line in the format of tests/bench/clients/
// (see _common.py there):
//
//	goclient -url URL -n N -c CONCURRENCY -mode json|bytes|rate|serial [-rate R] [-proto h1|h2c|h2]
//
// json: N GETs, every body parsed as JSON (encoding/json into any) and kept;
// bytes: N GETs, every body kept; rate: N GETs under a rate limit of R/s;
// serial: N GETs one at a time, with per-request latencies.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
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
	Errors       []string `json:"errors,omitempty"`
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

	out := result{Client: "go-core", Version: core.Version + " " + runtime.Version()}
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
	case "json", "bytes", "rate":
		reqs := make([]core.RequestConfig, *n)
		for i := range reqs {
			reqs[i].URL = *url
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
