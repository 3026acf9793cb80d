//go:build fastreqtest

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A retry made by the engine reaches the host through fastreq_log_drain,
// at debug level, only for a client that asked for debug logging.
func TestLogDrainCarriesRetries(t *testing.T) {
	srv := testServers(t)
	hookLogDrain() // start empty
	for _, tc := range []struct {
		cfg  string
		want bool
	}{
		{`{"debug":true,"max_retries":1,"backoff_multiplier":0.001}`, true},
		{`{"debug":false,"verbose":true,"max_retries":1,"backoff_multiplier":0.001}`, false},
	} {
		h := newClient(t, tc.cfg)
		key := fmt.Sprintf("logdrain-%d", time.Now().UnixNano())
		b := submit(t, h, fmt.Sprintf(`[{"url":%q}]`, srv.HTTPURL+"/x/status-then-ok?fail=1&key="+key))
		var recs []hookRecord
		for len(recs) == 0 {
			hookBatchWait(b, 1000)
			recs, _ = hookBatchDrain(b, 4)
		}
		if recs[0].Status != 200 {
			t.Fatalf("record %+v, want 200 after one retry", recs[0])
		}
		hookBatchFree(b)
		hookClientClose(h)

		waiting := hookLogWaiting()
		text, n := hookLogDrain()
		if waiting != int64(n) || hookLogWaiting() != 0 {
			t.Errorf("fastreq_log_counter said %d before a drain of %d records and %d after it, want %d and 0",
				waiting, n, hookLogWaiting(), n)
		}
		var got []logRecord
		if n > 0 {
			if err := json.Unmarshal([]byte(text), &got); err != nil || len(got) != int(n) {
				t.Fatalf("log drain %d records, JSON %q: %v", n, text, err)
			}
		}
		found := false
		for _, r := range got {
			if r.Message == "retrying" && r.Level == "debug" && strings.Contains(fmt.Sprint(r.Attrs["url"]), key) {
				found = true
			}
		}
		if found != tc.want {
			t.Errorf("config %s: retry logged = %v, want %v (records: %s)", tc.cfg, found, tc.want, text)
		}
	}
	if text, n := hookLogDrain(); n != 0 || text != "" {
		t.Errorf("second drain gave %d records %q, want none", n, text)
	}
}

// The queue is bounded: past maxLogRecords the oldest go, and the next
// drain says how many.
func TestLogQueueIsBounded(t *testing.T) {
	q := &logQueue{}
	for i := 0; i < maxLogRecords+5; i++ {
		q.add(logRecord{Message: fmt.Sprint(i)})
	}
	recs := q.take()
	if len(recs) != maxLogRecords+1 || recs[0].Level != "warning" || recs[0].Attrs["dropped"] != 5 || recs[1].Message != "5" {
		t.Fatalf("got %d records, first %+v, second %+v", len(recs), recs[0], recs[1])
	}
	for i, r := range recs[1:] { // oldest first across the ring's wrap
		if r.Message != fmt.Sprint(i+5) {
			t.Fatalf("record %d is %q, want %d", i, r.Message, i+5)
		}
	}
	if len(q.take()) != 0 {
		t.Error("take did not empty the queue")
	}
}
