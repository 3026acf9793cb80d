//go:build fastreqtest

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A C client sets impersonate in its JSON config: its https requests
// carry the target's User-Agent (and ClientHello: core's tests) over
// HTTP/2; an unknown target is a configuration error listing the known
// ones.
func TestImpersonateConfig(t *testing.T) {
	ts := testServers(t)
	c := newClient(t, fmt.Sprintf(`{"impersonate":"chrome131","ca_file":%q,"max_retries":0}`, ts.CAFile))
	b := submit(t, c, `[{"url":"`+ts.TLSURL+`/user-agent"},{"url":"`+ts.TLSURL+`/x/proto"}]`)
	defer hookBatchFree(b)
	for _, r := range collect(t, b, 2, 30*time.Second) {
		if r.Type != 0 {
			continue
		}
		if r.Status != 200 || r.Error != 0 {
			t.Fatalf("request %d: status %d error %d: %s", r.Index, r.Status, r.Error, r.Meta)
		}
		want := map[int64]string{0: "Chrome/131.0.0.0", 1: "HTTP/2.0"}[r.Index]
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("request %d: body %q, want %q in it", r.Index, r.Body, want)
		}
	}

	_, rc, msg := hookClientNew([]byte(`{"impersonate":"chrome1"}`))
	if rc == 0 {
		t.Fatal(`fastreq_client_new({"impersonate":"chrome1"}) succeeded`)
	}
	e := parseErr(t, msg)
	if e.Kind != "configuration" || e.Field != "impersonate" || !strings.Contains(e.Message, "chrome131, chrome133a, chrome136, safari180, safari184, firefox133, firefox135, random") {
		t.Errorf("unknown target: %+v", e)
	}
}
