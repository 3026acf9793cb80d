package core

import (
	"regexp"
	"strings"
	"testing"
)

func TestNewUserAgentsSources(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "USER_AGENTS" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name     string
		override []string
		getenv   func(string) string
		want     []string
	}{
		{"override wins over env", []string{"UA-1", " UA-2 "}, env("Env-1"), []string{"UA-1", "UA-2"}},
		{"blank override falls through", []string{"", "  "}, env("Env-1"), []string{"Env-1"}},
		{"env comma-separated, trimmed, empties dropped", nil, env(" Env-1 ,, Env-2,\tEnv-3 , "), []string{"Env-1", "Env-2", "Env-3"}},
		{"blank env falls through", nil, env(" , ,"), DefaultUserAgents},
		{"unset env", nil, env(""), DefaultUserAgents},
		{"empty override and env", []string{}, env(""), DefaultUserAgents},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := newUserAgents(tt.override, tt.getenv)
			if strings.Join(u.list, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("list = %q, want %q", u.list, tt.want)
			}
		})
	}
}

func TestNewUserAgentsCopies(t *testing.T) {
	override := []string{"UA-1", "UA-2"}
	u := newUserAgents(override, nil)
	override[0] = "changed"
	if u.list[0] != "UA-1" {
		t.Fatal("the rotation list aliases the caller's slice")
	}
	d := newUserAgents(nil, func(string) string { return "" })
	d.list[0] = "changed"
	if DefaultUserAgents[0] == "changed" {
		t.Fatal("the rotation list aliases DefaultUserAgents")
	}
}

func TestUserAgentsPickFromList(t *testing.T) {
	list := []string{"UA-1", "UA-2", "UA-3"}
	u := newUserAgents(list, nil)
	seen := map[string]int{}
	for range 3000 {
		seen[u.pick()]++
	}
	if len(seen) != len(list) {
		t.Fatalf("picked %v, want exactly %v", seen, list)
	}
	for _, s := range list {
		if seen[s] < 700 { // expected 1000 each
			t.Fatalf("rotation is skewed: %v", seen)
		}
	}
	if got := newUserAgents([]string{"only"}, nil).pick(); got != "only" {
		t.Fatalf("single-entry pick = %q", got)
	}
	if got := (&userAgents{}).pick(); got != "" {
		t.Fatalf("empty list pick = %q", got)
	}
	var nilUA *userAgents
	if got := nilUA.pick(); got != "" {
		t.Fatalf("nil pick = %q", got)
	}
}

func TestUserAgentsPickConcurrent(t *testing.T) {
	u := newUserAgents(nil, func(string) string { return "" })
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 1000 {
				if u.pick() == "" {
					t.Error("empty User-Agent")
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

// browserUA matches the shapes real browsers send: a Mozilla/5.0 token, a
// platform in parentheses and an engine product with a version.
var browserUA = regexp.MustCompile(`^Mozilla/5\.0 \((Windows NT 10\.0; Win64; x64|Macintosh; Intel Mac OS X [0-9_.]+|X11; Linux x86_64|Linux; Android [0-9]+; K|Android [0-9]+; Mobile|iPhone; CPU iPhone OS [0-9_]+ like Mac OS X)(; rv:[0-9]+\.0)?\) ` +
	`(AppleWebKit/[0-9.]+ \(KHTML, like Gecko\) |Gecko/[0-9.]+ )` +
	`(Chrome/[0-9]+\.0\.0\.0 (Mobile )?Safari/537\.36( Edg/[0-9.]+)?|Firefox/[0-9]+\.0|Version/[0-9]+\.[0-9]+ (Mobile/[0-9A-Z]+ )?Safari/60[45]\.1(\.15)?)$`)

func TestDefaultUserAgentsLookLikeBrowsers(t *testing.T) {
	if n := len(DefaultUserAgents); n < 10 || n > 16 {
		t.Fatalf("DefaultUserAgents has %d entries, want about 12", n)
	}
	seen := map[string]bool{}
	families := map[string]bool{}
	for _, ua := range DefaultUserAgents {
		if ua == "" || strings.TrimSpace(ua) != ua || strings.ContainsAny(ua, "\r\n\t") {
			t.Errorf("bad User-Agent %q", ua)
		}
		if seen[ua] {
			t.Errorf("duplicate User-Agent %q", ua)
		}
		seen[ua] = true
		if !browserUA.MatchString(ua) {
			t.Errorf("does not look like a browser: %q", ua)
		}
		switch {
		case strings.Contains(ua, " Edg/"):
			families["edge"] = true
		case strings.Contains(ua, " Chrome/"):
			families["chrome"] = true
		case strings.Contains(ua, " Firefox/"):
			families["firefox"] = true
		case strings.Contains(ua, " Version/"):
			families["safari"] = true
		}
		if strings.Contains(ua, "Mobile") {
			families["mobile"] = true
		}
	}
	for _, f := range []string{"chrome", "edge", "firefox", "safari", "mobile"} {
		if !families[f] {
			t.Errorf("no %s User-Agent in the default list", f)
		}
	}
}
