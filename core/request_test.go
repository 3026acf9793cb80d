package core

import (
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestPrepareValidation(t *testing.T) {
	ok := "http://example.com/"
	tests := []struct {
		name  string
		req   RequestConfig
		field string
	}{
		{"empty url", RequestConfig{}, "url"},
		{"no scheme", RequestConfig{URL: "example.com/x"}, "url"},
		{"ftp scheme", RequestConfig{URL: "ftp://example.com/"}, "url"},
		{"no host", RequestConfig{URL: "http:///path"}, "url"},
		{"port out of range", RequestConfig{URL: "http://example.com:99999/"}, "url"},
		{"port zero", RequestConfig{URL: "http://example.com:0/"}, "url"},
		{"unparseable", RequestConfig{URL: "http://[::1/"}, "url"},
		{"method with space", RequestConfig{URL: ok, Method: "GE T"}, "method"},
		{"method with colon", RequestConfig{URL: ok, Method: "GET:"}, "method"},
		{"header name with space", RequestConfig{URL: ok, Headers: map[string]string{"X Y": "1"}}, "headers"},
		{"empty header name", RequestConfig{URL: ok, Headers: map[string]string{"": "1"}}, "headers"},
		{"header value with newline", RequestConfig{URL: ok, Headers: map[string]string{"X-Y": "a\r\nInjected: 1"}}, "headers"},
		{"cookie value with semicolon", RequestConfig{URL: ok, Cookies: map[string]string{"a": "1; b=2"}}, "cookies"},
		{"cookie name with space", RequestConfig{URL: ok, Cookies: map[string]string{"a b": "1"}}, "cookies"},
		{"data and json", RequestConfig{URL: ok, Data: TextData("x"), JSON: json.RawMessage(`{}`)}, "data"},
		{"data and content", RequestConfig{URL: ok, Data: FormData(Params{{"a", "1"}}), Content: []byte("x")}, "data"},
		{"content and json", RequestConfig{URL: ok, Content: []byte{}, JSON: json.RawMessage(`1`)}, "data"},
		{"invalid json", RequestConfig{URL: ok, JSON: json.RawMessage(`{"a":`)}, "json"},
		{"negative timeout", RequestConfig{URL: ok, Timeout: -1}, "timeout"},
		{"NaN timeout", RequestConfig{URL: ok, Timeout: math.NaN()}, "timeout"},
		{"negative max_body_size", RequestConfig{URL: ok, MaxBodySize: -1}, "max_body_size"},
		{"stream and output_path", RequestConfig{URL: ok, Stream: true, OutputPath: "/tmp/x"}, "output_path"},
		{"bad proxy", RequestConfig{URL: ok, Proxy: "ftp://p:1"}, "proxy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := prepare(0, &tt.req)
			if err == nil {
				t.Fatalf("prepare accepted it: %+v", p)
			}
			var fe *Error
			if !errors.As(err, &fe) || fe.Kind != KindValidation || fe.Field != tt.field {
				t.Fatalf("error %#v, want a validation error on %q", err, tt.field)
			}
			if !errors.Is(err, ErrValidation) {
				t.Error("errors.Is(err, ErrValidation) is false")
			}
		})
	}
}

func TestPrepareURLPasswordNotInError(t *testing.T) {
	req := RequestConfig{URL: "ftp://user:TopSecretPW@example.com/"}
	_, err := prepare(0, &req)
	if err == nil || strings.Contains(err.Error(), "TopSecretPW") {
		t.Errorf("error %v leaks the URL's password", err)
	}
}

func TestPrepareBuildsRequest(t *testing.T) {
	tests := []struct {
		name        string
		req         RequestConfig
		method, url string
		body        string
		contentType string
	}{
		{"defaults", RequestConfig{URL: "http://h/p"}, "GET", "http://h/p", "", ""},
		{"method upper-cased", RequestConfig{URL: "http://h/p", Method: "patch"}, "PATCH", "http://h/p", "", ""},
		{"custom method token", RequestConfig{URL: "http://h/p", Method: "purge"}, "PURGE", "http://h/p", "", ""},
		{"params appended in order", RequestConfig{URL: "http://h/p?z=0&a=1", Params: Params{{"b", "2"}, {"a", "3"}}},
			"GET", "http://h/p?z=0&a=1&b=2&a=3", "", ""},
		{"params escaped", RequestConfig{URL: "https://h/p", Params: Params{{"q", "a b&c=d"}, {"é", "/"}}},
			"GET", "https://h/p?q=a+b%26c%3Dd&%C3%A9=%2F", "", ""},
		{"form", RequestConfig{URL: "http://h/", Method: "post", Data: FormData(Params{{"b", "2"}, {"a", "x y"}})},
			"POST", "http://h/", "b=2&a=x+y", "application/x-www-form-urlencoded"},
		{"empty form", RequestConfig{URL: "http://h/", Data: FormData(nil)}, "GET", "http://h/", "", "application/x-www-form-urlencoded"},
		{"text", RequestConfig{URL: "http://h/", Data: TextData("héllo")}, "GET", "http://h/", "héllo", ""},
		{"content", RequestConfig{URL: "http://h/", Content: []byte{0, 1, 2, 0xff}}, "GET", "http://h/", "\x00\x01\x02\xff", ""},
		{"json", RequestConfig{URL: "http://h/", JSON: json.RawMessage(`{"a":[1,2]}`)}, "GET", "http://h/", `{"a":[1,2]}`, "application/json"},
		{"json null is no body", RequestConfig{URL: "http://h/", JSON: json.RawMessage(`null`), Data: TextData("t")}, "GET", "http://h/", "t", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := prepare(3, &tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if p.index != 3 || p.method != tt.method || p.urlString != tt.url || string(p.body) != tt.body || p.contentType != tt.contentType {
				t.Errorf("got method %q url %q body %q content-type %q, want %q %q %q %q",
					p.method, p.urlString, p.body, p.contentType, tt.method, tt.url, tt.body, tt.contentType)
			}
		})
	}
}

func TestParamsJSON(t *testing.T) {
	tests := []struct {
		in   string
		want Params
	}{
		{`null`, nil},
		{`[["b","1"],["a","2"],["b","3"]]`, Params{{"b", "1"}, {"a", "2"}, {"b", "3"}}},
		{`[["n",1.5],["t",true],["f",false],["z",null]]`, Params{{"n", "1.5"}, {"t", "True"}, {"f", "False"}, {"z", ""}}},
		{`{"b":"1","a":["x",2]}`, Params{{"a", "x"}, {"a", "2"}, {"b", "1"}}},
		{`{"big":12345678901}`, Params{{"big", "12345678901"}}},
	}
	for _, tt := range tests {
		var p Params
		if err := json.Unmarshal([]byte(tt.in), &p); err != nil {
			t.Errorf("%s: %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(p, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.in, p, tt.want)
		}
	}
	for _, bad := range []string{`"a=1"`, `[[1,"x"]]`, `[["a",{"x":1}]]`, `{"a":{"b":1}}`, `[["a"`} {
		var p Params
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("%s: accepted as %v", bad, p)
		}
	}
}

func TestDataJSON(t *testing.T) {
	var d Data
	if err := json.Unmarshal([]byte(`"raw text"`), &d); err != nil || d.IsForm || d.Text != "raw text" {
		t.Errorf("text: %+v %v", d, err)
	}
	d = Data{}
	if err := json.Unmarshal([]byte(`{"a":"1"}`), &d); err != nil || !d.IsForm || !reflect.DeepEqual(d.Form, Params{{"a", "1"}}) {
		t.Errorf("form: %+v %v", d, err)
	}
	for _, in := range []*Data{FormData(Params{{"k", "v"}, {"k", "w"}}), TextData("body")} {
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var back Data
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, *in) {
			t.Errorf("round trip of %+v via %s gave %+v (%v)", *in, b, back, err)
		}
	}
	// A whole RequestConfig in its JSON form.
	var rc RequestConfig
	in := `{"url":"http://h/","method":"post","params":[["a","1"]],"data":{"x":"y"},"content":null,"headers":{"X":"1"},"timeout":2.5,"http2":false}`
	if err := json.Unmarshal([]byte(in), &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Method != "post" || rc.Data == nil || !rc.Data.IsForm || rc.Timeout != 2.5 || rc.HTTP2 == nil || *rc.HTTP2 {
		t.Errorf("decoded %+v", rc)
	}
}

// ---- against the server ----

func TestRequestMethodAndBodies(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	url := ts.HTTPURL + "/x/echo"
	tests := []struct {
		name        string
		req         RequestConfig
		method      string
		body        string
		contentType string
		form        map[string][]string
	}{
		{"get", RequestConfig{URL: url}, "GET", "", "", nil},
		{"lower-case method", RequestConfig{URL: url, Method: "delete"}, "DELETE", "", "", nil},
		{"form", RequestConfig{URL: url, Method: "post", Data: FormData(Params{{"a", "1"}, {"b", "x y"}, {"a", "2"}})},
			"POST", "a=1&b=x+y&a=2", "application/x-www-form-urlencoded", map[string][]string{"a": {"1", "2"}, "b": {"x y"}}},
		{"text", RequestConfig{URL: url, Method: "PUT", Data: TextData("plain text")}, "PUT", "plain text", "", nil},
		{"bytes", RequestConfig{URL: url, Method: "POST", Content: []byte("\x00bin\x01")}, "POST", "\x00bin\x01", "", nil},
		{"json", RequestConfig{URL: url, Method: "POST", JSON: json.RawMessage(`{"k":[1,"two"]}`)}, "POST", `{"k":[1,"two"]}`, "application/json", nil},
		{"caller's content-type wins", RequestConfig{URL: url, Method: "POST", JSON: json.RawMessage(`1`),
			Headers: map[string]string{"content-type": "application/vnd.x+json"}}, "POST", `1`, "application/vnd.x+json", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := decodeEcho(t, doReq(t, c, tt.req))
			if e.Method != tt.method || e.Body != tt.body {
				t.Errorf("server saw %s %q, want %s %q", e.Method, e.Body, tt.method, tt.body)
			}
			if got := echoHeader(e, "Content-Type"); got != tt.contentType {
				t.Errorf("content-type %q, want %q", got, tt.contentType)
			}
			if tt.form != nil && !reflect.DeepEqual(e.Form, tt.form) {
				t.Errorf("form %v, want %v", e.Form, tt.form)
			}
			if tt.body != "" && e.BodySize != len(tt.body) {
				t.Errorf("body size %d", e.BodySize)
			}
		})
	}
}

func TestRequestParamsMergedWithQuery(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	e := decodeEcho(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/echo?a=1&z=%2F", Params: Params{{"b", "2"}, {"a", "3 4"}}}))
	if e.URL != "/x/echo?a=1&z=%2F&b=2&a=3+4" {
		t.Errorf("request URI %q", e.URL)
	}
	if !reflect.DeepEqual(e.Query["a"], []string{"1", "3 4"}) {
		t.Errorf("a = %v", e.Query["a"])
	}
}

func TestRequestHeadersMerge(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) {
		c.Headers = map[string]string{"X-Client": "client", "X-Both": "client", "Accept": "text/plain"}
	})
	e := decodeEcho(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/echo",
		Headers: map[string]string{"x-both": "request", "X-Only-Request": "r", "Host": "virtual.example"}}))
	want := map[string]string{"x-client": "client", "x-both": "request", "x-only-request": "r", "accept": "text/plain",
		"accept-encoding": "gzip, deflate, br, zstd"}
	for k, v := range want {
		if got := e.Headers[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %v, want [%s]", k, got, v)
		}
	}
	if e.Host != "virtual.example" {
		t.Errorf("Host %q, want the request's Host header", e.Host)
	}
	// The client's defaults are not changed by a request's headers.
	e = decodeEcho(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/echo"}))
	if got := echoHeader(e, "x-both"); got != "client" {
		t.Errorf("next request sent X-Both %q, want client", got)
	}
	if _, ok := e.Headers["x-only-request"]; ok {
		t.Error("a request's header leaked into the next request")
	}
}

func TestRequestFollowRedirects(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/redirect-chain?n=3"})
	mustOK(t, res)
	if res.URL != ts.HTTPURL+"/x/redirect-chain?n=0" {
		t.Errorf("final URL %q", res.URL)
	}

	res = doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/redirect-chain?n=3", FollowRedirects: ptr(false)})
	if res.Error != nil || res.StatusCode != 302 {
		t.Fatalf("follow_redirects=false: status %d error %v, want the 302", res.StatusCode, res.Error)
	}
	if res.Headers["location"] != "/x/redirect-chain?n=2" || res.URL != ts.HTTPURL+"/x/redirect-chain?n=3" {
		t.Errorf("location %q url %q", res.Headers["location"], res.URL)
	}

	// The client setting, overridden per request the other way.
	c2 := newTestClient(t, func(c *ClientConfig) { c.FollowRedirects = ptr(false) })
	if res := doReq(t, c2, RequestConfig{URL: ts.HTTPURL + "/x/redirect-chain?n=1"}); res.StatusCode != 302 {
		t.Errorf("client follow_redirects=false: status %d", res.StatusCode)
	}
	mustOK(t, doReq(t, c2, RequestConfig{URL: ts.HTTPURL + "/x/redirect-chain?n=1", FollowRedirects: ptr(true)}))
}

func TestRequestRedirectKeepsBody(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	payload := strings.Repeat("body survives a 307 ", 500)
	for _, status := range []string{"307", "308"} {
		e := decodeEcho(t, doReq(t, c, RequestConfig{Method: "POST", Data: TextData(payload),
			URL: ts.HTTPURL + "/redirect-to?status_code=" + status + "&url=" + url.QueryEscape(ts.HTTPURL+"/x/echo")}))
		if e.Method != "POST" || e.Body != payload {
			t.Errorf("after a %s redirect the server saw %s with %d bytes, want POST with %d", status, e.Method, len(e.Body), len(payload))
		}
	}
}

func TestRequestRedirectLimit(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRedirects = 3; c.MaxRetries = 3 })
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/redirect-loop"})
	wantKind(t, res, KindTooManyRedirects)
	if res.Attempts != 1 {
		t.Errorf("%d attempts: a redirect loop must not be retried", res.Attempts)
	}
	if !errors.Is(res.Err(), ErrTooManyRedirects) {
		t.Error("errors.Is(ErrTooManyRedirects) false")
	}
	// Exactly the limit is fine.
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/redirect-chain?n=3"}))
	if res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/redirect-chain?n=4"}); res.Error == nil || res.Error.Kind != KindTooManyRedirects {
		t.Errorf("4 redirects with a limit of 3: %v", res.Error)
	}
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 1 })
	for _, tt := range []struct {
		name string
		req  RequestConfig
	}{
		{"no response", RequestConfig{URL: ts.HTTPURL + "/x/stall", Timeout: 0.2}},
		{"stalled body", RequestConfig{URL: ts.HTTPURL + "/x/stall-body", Timeout: 0.2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			res := doReq(t, c, tt.req)
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v with a 0.2s timeout", d)
			}
			e := wantKind(t, res, KindRetriesExhausted)
			if e.Last == nil || e.Last.Kind != KindTimeout || res.Attempts != 2 {
				t.Fatalf("last %+v attempts %d; want a timeout, retried once", e.Last, res.Attempts)
			}
			if !errors.Is(res.Err(), ErrTimeout) {
				t.Error("errors.Is(err, ErrTimeout) is false")
			}
			if res.StatusCode != 0 || res.Content != nil {
				t.Errorf("failed request kept status %d content %q", res.StatusCode, res.Content)
			}
		})
	}
	// The client's timeout applies when the request has none.
	c2 := newTestClient(t, func(c *ClientConfig) { c.Timeout = 0.2 })
	if res := doReq(t, c2, RequestConfig{URL: ts.HTTPURL + "/x/stall"}); !errors.Is(res.Err(), ErrTimeout) {
		t.Errorf("client timeout: %v", res.Err())
	}
	// And a request's own timeout overrides it.
	mustOK(t, doReq(t, c2, RequestConfig{URL: ts.HTTPURL + "/x/stall?seconds=0.3", Timeout: 5}))
}

// TestOptionsNoneSeesEveryField: prepare shares noOptions between requests
// whose options.none() is true, so a field none() forgot would be dropped
// from every request that sets only it.
func TestOptionsNoneSeesEveryField(t *testing.T) {
	typ := reflect.TypeOf(options{})
	for i := range typ.NumField() {
		var o options
		f := reflect.ValueOf(&o).Elem().Field(i)
		f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem() // settable though unexported
		switch f.Kind() {
		case reflect.String:
			f.SetString("x")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Float64:
			f.SetFloat(1)
		case reflect.Int64:
			f.SetInt(1)
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf("v"))
			f.Set(m)
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Func:
			f.Set(reflect.MakeFunc(f.Type(), func([]reflect.Value) []reflect.Value { return []reflect.Value{reflect.Zero(f.Type().Out(0))} }))
		default:
			t.Fatalf("field %s: kind %s not covered by this test", typ.Field(i).Name, f.Kind())
		}
		if o.none() {
			t.Errorf("options.none() is true with %s set", typ.Field(i).Name)
		}
	}
	if !noOptions.none() {
		t.Error("noOptions sets something")
	}
}
