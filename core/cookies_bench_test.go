package core

import (
	"net/url"
	"testing"
)

// The session jar's question for every request, when no cookie was ever
// set.
func BenchmarkSessionJarEmpty(b *testing.B) {
	j := newSessionJar(nil)
	u, _ := url.Parse("http://127.0.0.1:8080/json")
	b.ReportAllocs()
	for b.Loop() {
		if len(j.Cookies(u)) != 0 {
			b.Fatal("cookies in an empty jar")
		}
	}
}
