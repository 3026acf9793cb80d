// Command gofloor is the benchmark's floor: a bare net/http client loop,
// the least a Go program pays for the same work as goclient (the engine,
// package core) without any of the engine's machinery. It obeys goclient's
// command line and prints the same JSON line (see tests/bench/internal/
// benchcli and tests/bench/clients/_common.py):
//
//	gofloor -url URL -n N -c CONCURRENCY -mode json|bytes|rate|serial [-rate R] [-proto h1|h2c|h2] [-hosts H]
//
// Its shape: one transport, CONCURRENCY goroutines taking request indices
// from an atomic counter, each request a GET whose body io.ReadAll reads
// whole; mode json parses every body with encoding/json into an any and
// keeps it, mode bytes keeps every body; mode rate waits for a token of a
// golang.org/x/time/rate limiter of R/s (burst 5, the engine's default)
// before each request; mode serial makes them one at a time, timing each.
// The transport for -proto h1 is an http.Transport with
// MaxIdleConnsPerHost = MaxConnsPerHost = CONCURRENCY speaking HTTP/1.1
// only (over TLS for an https:// URL); for h2 the same with HTTP/2 by ALPN;
// for h2c golang.org/x/net/http2's Transport with AllowHTTP and a plain
// TCP dial (prior knowledge). TLS as goclient gives the engine: no
// certificate checks, a session cache. Mode storm (retries) is not a bare
// loop's job: gofloor refuses it.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/time/rate"

	"github.com/fastreq/fastreq/tests/bench/internal/benchcli"
)

// rateBurst is the engine's default rate_limit_burst.
const rateBurst = 5

// transport builds the one round tripper of the run.
func transport(proto string, conc int) (http.RoundTripper, error) {
	tlsConfig := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the bench server's certificate is self-signed, as for goclient
		ClientSessionCache: tls.NewLRUClientSessionCache(0),
	}
	switch proto {
	case "h2c":
		return &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		}, nil
	case "h1", "h2":
		t := &http.Transport{
			MaxIdleConnsPerHost: conc,
			MaxConnsPerHost:     conc,
			TLSClientConfig:     tlsConfig,
			Protocols:           new(http.Protocols),
		}
		t.Protocols.SetHTTP1(proto == "h1")
		t.Protocols.SetHTTP2(proto == "h2")
		return t, nil
	}
	return nil, fmt.Errorf("unknown -proto %q", proto)
}

// version names Go and the x/net it was built with.
func version() string {
	v := runtime.Version() + " net/http"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == "golang.org/x/net" {
				v += ", golang.org/x/net " + m.Version
			}
		}
	}
	return v
}

// outcome is one request's result, written by the goroutine that made it.
type outcome struct {
	v    any    // mode json, rate, serial: the parsed body
	body []byte // mode bytes: the body
	err  error
}

func main() {
	f := benchcli.Parse("gofloor")
	switch f.Mode {
	case "json", "bytes", "rate", "serial":
	case "storm":
		benchcli.Exit("gofloor", 2, "mode storm needs retries, which a bare loop does not have")
	default:
		benchcli.Exit("gofloor", 2, fmt.Sprintf("unknown -mode %q", f.Mode))
	}
	conc := f.Conc
	if f.Mode == "serial" {
		conc = 1
	}
	rt, err := transport(f.Proto, conc)
	if err != nil {
		benchcli.Exit("gofloor", 2, err)
	}
	client := &http.Client{Transport: rt}
	out := benchcli.Result{Client: "go-floor", Version: version(), Info: benchcli.Nofile()}
	url := func(int) string { return f.URL }
	if f.Hosts > 0 {
		urls, err := benchcli.HostURLs(f.URL, f.N, f.Hosts)
		if err != nil {
			benchcli.Exit("gofloor", 2, err)
		}
		url = func(i int) string { return urls[i] }
		out.Info += "; " + strconv.Itoa(f.Hosts) + " hosts"
	}
	var limiter *rate.Limiter
	if f.Mode == "rate" {
		limiter = rate.NewLimiter(rate.Limit(f.Rate), rateBurst)
	}
	ctx := context.Background()

	get := func(i int) (o outcome) {
		if limiter != nil {
			if o.err = limiter.Wait(ctx); o.err != nil {
				return o
			}
		}
		resp, err := client.Get(url(i))
		if err != nil {
			o.err = err
			return o
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			o.err = err
		case resp.StatusCode != http.StatusOK:
			o.err = fmt.Errorf("status %d", resp.StatusCode)
		case f.Mode == "bytes":
			o.body = body
		default:
			o.err = json.Unmarshal(body, &o.v)
		}
		return o
	}

	results := make([]outcome, f.N)
	var lat []float64
	cpu0 := benchcli.CPUSeconds()
	t0 := time.Now()
	if f.Mode == "serial" {
		lat = make([]float64, 0, f.N)
		for i := range results {
			s := time.Now()
			results[i] = get(i)
			lat = append(lat, float64(time.Since(s))/1e6)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(conc, f.N) {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= f.N {
						return
					}
					results[i] = get(i)
				}
			})
		}
		wg.Wait()
	}
	out.Elapsed = time.Since(t0).Seconds()
	out.CPUWork = benchcli.CPUSeconds() - cpu0

	for _, o := range results {
		if o.err != nil {
			out.AddError(o.err)
			continue
		}
		out.OK++
		out.Kept++
		out.Bytes += int64(len(o.body))
	}
	out.Finish(f.Mode, lat)
	runtime.KeepAlive(results)
}
