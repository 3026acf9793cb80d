// Command goclient is the benchmark's Go-native client: the fastreq engine
// (package core) used directly, without the C ABI or Python. It runs one
// workload and prints one JSON line in the format of tests/bench/clients/
// (see _common.py there):
//
//	goclient -url URL -n N -c CONCURRENCY -mode json|bytes|rate|serial|storm [-rate R] [-proto h1|h2c|h2|h3]
//	         [-hosts H] [-retries R]
//
// json: N GETs, every body parsed as JSON (encoding/json into any) and kept
// as its response arrives (Batch.Results);
// bytes: N GETs, every body kept; rate: N GETs under a rate limit of R/s;
// serial: N GETs one at a time, with per-request latencies; storm: N GETs
// of a URL where nothing listens, with -retries retries and the engine's
// default backoff, each of which must fail the way it should (then it
// counts as "ok"; see _common.py). -hosts H spreads the requests over H
// loopback hosts (request i goes to host i % H, see benchcli.HostURLs).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/fastreq/fastreq/core"
	"github.com/fastreq/fastreq/tests/bench/internal/benchcli"
)

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

func main() {
	f := benchcli.Parse("goclient")

	// The settings go through the config's JSON form (the names of the
	// Python API), so this keeps compiling whether a field is a bool or a
	// *bool in core.ClientConfig.
	settings := map[string]any{
		"concurrency": f.Conc,
		"max_retries": 0,
		"verify_ssl":  false,
		"verbose":     false,
	}
	switch f.Proto {
	case "h1":
		settings["http2"] = false
	case "h2c":
		settings["backend"] = "http2" // h2c with prior knowledge
	case "h2":
		settings["http2"] = true // h2 by ALPN
	case "h3":
		settings["backend"] = "http3" // HTTP/3 over QUIC
	default:
		fmt.Fprintf(os.Stderr, "goclient: unknown -proto %q\n", f.Proto)
		os.Exit(2)
	}
	if f.Mode == "rate" {
		settings["rate_limit"] = f.Rate
	}
	if f.Mode == "serial" {
		settings["concurrency"] = 1
	}
	if f.Mode == "storm" {
		// the engine's defaults for everything else: backoff_multiplier 1 s,
		// jitter 0.1, max_delay 60 s and, where the engine has one, its
		// circuit breaker
		settings["max_retries"] = f.Retries
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

	out := benchcli.Result{Client: "go-core", Version: core.Version + " " + runtime.Version(), Info: benchcli.Nofile()}
	if f.Mode == "storm" {
		if hasOption("circuit_breaker_threshold") {
			out.Info += "; circuit_breaker_threshold: engine default"
		} else {
			out.Info += "; no circuit_breaker_threshold in this core"
		}
	}
	urls := []string{}
	if f.Hosts > 0 {
		var err error
		if urls, err = benchcli.HostURLs(f.URL, f.N, f.Hosts); err != nil {
			fmt.Fprintln(os.Stderr, "goclient:", err)
			os.Exit(2)
		}
		out.Info += "; " + strconv.Itoa(f.Hosts) + " hosts"
	}
	attempts := 0
	kinds := map[string]int{}
	ctx := context.Background()
	var keptJSON []any
	var keptBytes [][]byte
	var lat []float64
	addErr := out.AddError
	keep := func(r *core.NormalizedResponse) {
		if f.Mode == "storm" {
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
		if f.Mode == "bytes" {
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

	cpu0 := benchcli.CPUSeconds()
	t0 := time.Now()
	switch f.Mode {
	case "json", "bytes", "rate", "storm":
		reqs := make([]core.RequestConfig, f.N)
		for i := range reqs {
			if len(urls) > 0 {
				reqs[i].URL = urls[i]
			} else {
				reqs[i].URL = f.URL
			}
		}
		keptJSON = make([]any, 0, f.N)
		b, err := client.Submit(ctx, reqs, core.BatchOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "goclient:", err)
			os.Exit(1)
		}
		for r := range b.Results() {
			keep(r)
		}
	case "serial":
		lat = make([]float64, 0, f.N)
		for i := 0; i < f.N; i++ {
			s := time.Now()
			r, _ := client.Do(ctx, core.RequestConfig{URL: f.URL})
			if r == nil {
				addErr(fmt.Errorf("no response"))
				continue
			}
			keep(r)
			lat = append(lat, float64(time.Since(s))/1e6)
		}
	default:
		fmt.Fprintf(os.Stderr, "goclient: unknown -mode %q\n", f.Mode)
		os.Exit(2)
	}
	out.Elapsed = time.Since(t0).Seconds()
	out.CPUWork = benchcli.CPUSeconds() - cpu0
	out.Kept = len(keptJSON) + len(keptBytes)
	if f.Mode == "storm" {
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
	out.Finish(f.Mode, lat)
	runtime.KeepAlive(keptJSON)
	runtime.KeepAlive(keptBytes)
}
