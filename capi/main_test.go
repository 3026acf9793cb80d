//go:build fastreqtest

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fastreq/fastreq/tests/testserver"
)

// The test servers start on first use, so that fuzz workers and benchmarks
// that need no network do not pay for them.
var (
	serversOnce sync.Once
	servers     *testserver.Servers
	serversErr  error
)

func testServers(t testing.TB) *testserver.Servers {
	t.Helper()
	serversOnce.Do(func() { servers, serversErr = testserver.New(testserver.Options{}) })
	if serversErr != nil {
		t.Fatalf("starting test servers: %v", serversErr)
	}
	return servers
}

func TestMain(m *testing.M) {
	code := m.Run()
	if servers != nil {
		if err := servers.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "closing test servers:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// apiErr is the error object of a failed call.
type apiErr struct {
	Kind    string `json:"kind"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func parseErr(t testing.TB, s string) apiErr {
	t.Helper()
	var e apiErr
	if err := json.Unmarshal([]byte(s), &e); err != nil {
		t.Fatalf("error object %q is not JSON: %v", s, err)
	}
	return e
}

// newClient creates a client through the C ABI and closes it when the
// test ends.
func newClient(t testing.TB, cfg string) uint64 {
	t.Helper()
	h, rc, e := hookClientNew([]byte(cfg))
	if rc != 0 {
		t.Fatalf("fastreq_client_new(%s) = %d: %s", cfg, rc, e)
	}
	t.Cleanup(func() {
		if rc := hookClientClose(h); rc != 0 {
			t.Errorf("fastreq_client_close = %d", rc)
		}
	})
	return h
}

// submit submits a batch through the C ABI; the caller frees it.
func submit(t testing.TB, client uint64, reqs string) uint64 {
	t.Helper()
	b, rc, e := hookSubmit(client, []byte(reqs), 0)
	if rc != 0 {
		t.Fatalf("fastreq_batch_submit = %d: %s", rc, e)
	}
	return b
}

// requests is a JSON array of n copies of one request object.
func requests(n int, obj string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = obj
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// collect drains a batch until it has `results` RESULT records (failing
// the test after timeout) and returns every record drained.
func collect(t testing.TB, b uint64, results int, timeout time.Duration) []hookRecord {
	t.Helper()
	var all []hookRecord
	got := 0
	deadline := time.Now().Add(timeout)
	for got < results {
		if time.Now().After(deadline) {
			t.Fatalf("got %d of %d results within %v", got, results, timeout)
		}
		if rc := hookBatchWait(b, 100); rc < 0 {
			t.Fatalf("fastreq_batch_wait = %d", rc)
		}
		for {
			recs, rc := hookBatchDrain(b, 256)
			if rc < 0 {
				t.Fatalf("fastreq_batch_drain = %d", rc)
			}
			for _, r := range recs {
				if r.Type == 0 {
					got++
				}
			}
			all = append(all, recs...)
			if len(recs) < 256 {
				break
			}
		}
	}
	return all
}

// TestGCPercent: the library runs its collector at gcPercent, unless the
// host's environment chose a GOGC.
func TestGCPercent(t *testing.T) {
	want := gcPercent
	if env := os.Getenv("GOGC"); env != "" {
		t.Skipf("GOGC=%s is set: the runtime's own setting applies", env)
	}
	if got := debug.SetGCPercent(want); got != want {
		t.Errorf("GOGC is %d, want %d", got, want)
	}
}
