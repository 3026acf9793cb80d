package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"
	"golang.org/x/net/http/httpguts"
)

// RequestConfig describes one request. JSON names are those of the Python
// API. Zero values mean "use the client's setting" where a field overrides
// one.
type RequestConfig struct {
	// ID is an optional caller tag echoed back in the response.
	ID string `json:"id,omitempty"`
	// URL must be http:// or https:// with a host.
	URL string `json:"url"`
	// Method is an HTTP method; "" means GET. It is upper-cased.
	Method string `json:"method,omitempty"`
	// Params are query parameters appended to the URL's own query, in order.
	Params Params `json:"params,omitempty"`
	// Data is a form (sent as application/x-www-form-urlencoded) or a text
	// body. At most one of Data, Content and JSON may be set.
	Data *Data `json:"data,omitempty"`
	// Content is a raw byte body (base64 in JSON).
	Content []byte `json:"content,omitempty"`
	// JSON is a body sent as application/json, already serialized.
	JSON json.RawMessage `json:"json,omitempty"`
	// Headers are merged over the client's default headers.
	Headers map[string]string `json:"headers,omitempty"`
	// Cookies are sent with this request only.
	Cookies map[string]string `json:"cookies,omitempty"`
	// Timeout in seconds per attempt; 0 means the client's.
	Timeout float64 `json:"timeout,omitempty"`
	// Proxy is used for this request, winning over the pool; "" means none
	// (or the pool's).
	Proxy string `json:"proxy,omitempty"`
	// HTTP2, FollowRedirects and VerifySSL override the client's settings
	// when not nil.
	HTTP2           *bool `json:"http2,omitempty"`
	FollowRedirects *bool `json:"follow_redirects,omitempty"`
	VerifySSL       *bool `json:"verify_ssl,omitempty"`
	// Stream hands the body over in chunks as it arrives (to OnChunk, or to
	// the batch's OnChunk) instead of keeping it.
	Stream bool `json:"stream,omitempty"`
	// OutputPath writes the body straight to this file (created or
	// truncated; written to a temporary file beside it and renamed on
	// success) instead of keeping it.
	OutputPath string `json:"output_path,omitempty"`
	// MaxBodySize overrides the client's limit when > 0.
	MaxBodySize int64 `json:"max_body_size,omitempty"`
	// RetryNonIdempotent overrides the client's setting when not nil.
	RetryNonIdempotent *bool `json:"retry_non_idempotent,omitempty"`

	// OnChunk receives the body of a streaming request chunk by chunk. The
	// slice is only valid during the call. Returning an error fails the
	// request with KindIO.
	OnChunk func(chunk []byte) error `json:"-"`
}

// Params is an ordered list of query or form parameters. In JSON it is
// either an array of [name, value] pairs (order kept) or an object whose
// values are strings, numbers, booleans or arrays of them (sorted by name).
type Params [][2]string

// UnmarshalJSON accepts both JSON forms of Params.
func (p *Params) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*p = nil
		return nil
	case b[0] == '[':
		var pairs [][2]any
		if err := gojson.Unmarshal(b, &pairs); err != nil {
			return fmt.Errorf("params: want [[name, value], ...] or an object: %w", err)
		}
		out := make(Params, 0, len(pairs))
		for _, kv := range pairs {
			name, ok := kv[0].(string)
			if !ok {
				return fmt.Errorf("params: a name must be a string, got %v", kv[0])
			}
			v, err := scalarString(kv[1])
			if err != nil {
				return fmt.Errorf("params %q: %w", name, err)
			}
			out = append(out, [2]string{name, v})
		}
		*p = out
		return nil
	case b[0] == '{':
		var m map[string]any
		if err := gojson.Unmarshal(b, &m); err != nil {
			return fmt.Errorf("params: %w", err)
		}
		names := make([]string, 0, len(m))
		for k := range m {
			names = append(names, k)
		}
		sort.Strings(names)
		out := make(Params, 0, len(m))
		for _, k := range names {
			vals, isList := m[k].([]any)
			if !isList {
				vals = []any{m[k]}
			}
			for _, v := range vals {
				s, err := scalarString(v)
				if err != nil {
					return fmt.Errorf("params %q: %w", k, err)
				}
				out = append(out, [2]string{k, s})
			}
		}
		*p = out
		return nil
	}
	return fmt.Errorf("params: want an array of pairs or an object, got %.20s", b)
}

// scalarString renders a JSON scalar the way Python's urlencode does.
func scalarString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		if x {
			return "True", nil
		}
		return "False", nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("value must be a string, number or boolean, got %T", v)
}

func (p Params) encode() string {
	var sb strings.Builder
	for i, kv := range p {
		if i > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(url.QueryEscape(kv[0]))
		sb.WriteByte('=')
		sb.WriteString(url.QueryEscape(kv[1]))
	}
	return sb.String()
}

// Data is a form or a text body. In JSON a string is a text body; an
// object or an array of pairs is a form.
type Data struct {
	Form Params
	Text string
	// IsForm tells a form (even an empty one) from a text body.
	IsForm bool
}

// UnmarshalJSON accepts a string (text) or Params (form).
func (d *Data) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		d.IsForm = false
		return gojson.Unmarshal(b, &d.Text)
	}
	d.IsForm = true
	if err := d.Form.UnmarshalJSON(b); err != nil {
		return fmt.Errorf("data: %w", err)
	}
	return nil
}

// MarshalJSON writes the form as pairs or the text as a string.
func (d Data) MarshalJSON() ([]byte, error) {
	if d.IsForm {
		return gojson.Marshal([][2]string(d.Form))
	}
	return gojson.Marshal(d.Text)
}

// FormData returns Data holding a form.
func FormData(form Params) *Data { return &Data{Form: form, IsForm: true} }

// TextData returns Data holding a text body.
func TextData(s string) *Data { return &Data{Text: s} }

// prepared is a validated request, ready for any number of attempts. A
// large batch holds one per request not yet finished, so it keeps only
// what an attempt reads: about 80 bytes and the URL for a plain GET.
type prepared struct {
	index     int
	urlString string // parsed again per attempt; keeping the *url.URL would cost ~150 B per queued request
	method    string
	body      []byte // resent intact on every attempt
	plain     bool   // http:// (h2c for the http2 backend)
	// idempotent: the method is (GET, HEAD, OPTIONS, TRACE, PUT, DELETE)
	// or an Idempotency-Key header says so; anything else is replayed
	// only when it provably was not processed (RetryNonIdempotent).
	idempotent bool
	*options   // never nil: requests that set none share noOptions
}

// options are the settings few requests of a batch set, kept apart from
// prepared so that plain requests share one empty set.
type options struct {
	id                 string
	contentType        string
	headers            map[string]string
	cookies            map[string]string
	timeout            float64
	proxy              *url.URL // explicit proxy, or nil
	http2              *bool
	followRedirects    *bool
	verifySSL          *bool
	stream             bool
	onChunk            func([]byte) error
	outputPath         string
	maxBodySize        int64
	retryNonIdempotent *bool
}

// noOptions is the options of every request that sets none; never written.
var noOptions = &options{}

// prepare validates cfg and builds everything an attempt needs, before
// any network work. Errors are validation errors naming the field. The
// result shares nothing mutable with cfg but its maps and body bytes,
// which the caller hands over.
func prepare(index int, cfg *RequestConfig) (*prepared, error) {
	p := &prepared{index: index}
	u, err := parseHTTPURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	p.urlString = cfg.URL // parsed as is by every attempt: no second copy of the text
	if q, changed := escapeQuery(u.RawQuery); changed {
		u.RawQuery = q
		p.urlString = u.String()
	}
	if len(cfg.Params) > 0 {
		if u.RawQuery != "" {
			u.RawQuery += "&" + cfg.Params.encode()
		} else {
			u.RawQuery = cfg.Params.encode()
		}
		p.urlString = u.String()
	}
	p.plain = u.Scheme == "http"

	p.method = http.MethodGet
	if cfg.Method != "" {
		p.method = strings.ToUpper(cfg.Method)
		if !validMethod(p.method) {
			return nil, validationError("method", "method %q is not a valid HTTP method token", cfg.Method)
		}
	}
	if err := validateHeaders("headers", cfg.Headers); err != nil {
		return nil, err
	}
	if err := validateCookies("cookies", cfg.Cookies); err != nil {
		return nil, err
	}
	o := options{
		id:                 cfg.ID,
		headers:            cfg.Headers,
		cookies:            cfg.Cookies,
		timeout:            cfg.Timeout,
		http2:              cfg.HTTP2,
		followRedirects:    cfg.FollowRedirects,
		verifySSL:          cfg.VerifySSL,
		stream:             cfg.Stream,
		onChunk:            cfg.OnChunk,
		outputPath:         cfg.OutputPath,
		maxBodySize:        cfg.MaxBodySize,
		retryNonIdempotent: cfg.RetryNonIdempotent,
	}
	p.idempotent = idempotentMethod(p.method) || hasIdempotencyKey(cfg.Headers)
	bodies := 0
	if cfg.Data != nil {
		bodies++
		if cfg.Data.IsForm {
			p.body = []byte(cfg.Data.Form.encode())
			o.contentType = "application/x-www-form-urlencoded"
		} else {
			p.body = []byte(cfg.Data.Text)
		}
	}
	if cfg.Content != nil {
		bodies++
		p.body = cfg.Content
	}
	if len(cfg.JSON) > 0 && string(cfg.JSON) != "null" {
		bodies++
		if !json.Valid(cfg.JSON) {
			return nil, validationError("json", "json body is not valid JSON")
		}
		p.body = cfg.JSON
		o.contentType = "application/json"
	}
	if bodies > 1 {
		return nil, validationError("data", "set at most one of data, content and json")
	}
	if err := checkNonNegative("timeout", cfg.Timeout); err != nil {
		return nil, err
	}
	if cfg.MaxBodySize < 0 {
		return nil, validationError("max_body_size", "max_body_size must be >= 0, got %d", cfg.MaxBodySize)
	}
	if cfg.Stream && cfg.OutputPath != "" {
		return nil, validationError("output_path", "stream and output_path cannot both be set")
	}
	if cfg.Proxy != "" {
		if o.proxy, err = ParseProxy(cfg.Proxy); err != nil {
			return nil, err
		}
	}
	p.options = noOptions
	if !o.none() {
		own := o // on the heap only for a request that sets options
		p.options = &own
	}
	return p, nil
}

// none reports whether o sets nothing (its maps may be empty, not nil).
func (o *options) none() bool {
	return o.id == "" && o.contentType == "" && len(o.headers) == 0 && len(o.cookies) == 0 &&
		o.timeout == 0 && o.proxy == nil && o.http2 == nil && o.followRedirects == nil &&
		o.verifySSL == nil && !o.stream && o.onChunk == nil && o.outputPath == "" && o.maxBodySize == 0 && o.retryNonIdempotent == nil
}

// idempotentMethod reports whether RFC 9110 calls m idempotent.
func idempotentMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// hasIdempotencyKey reports whether h carries an Idempotency-Key (or
// X-Idempotency-Key) header, which makes a request safe to replay, as
// net/http also takes it.
func hasIdempotencyKey(h map[string]string) bool {
	for k := range h {
		if strings.EqualFold(k, "Idempotency-Key") || strings.EqualFold(k, "X-Idempotency-Key") {
			return true
		}
	}
	return false
}

func parseHTTPURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, validationError("url", "url is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, validationError("url", "url %q is not a valid URL: %v", redactURL(raw), unwrapURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, validationError("url", "url %q must start with http:// or https://", redactURL(raw))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, validationError("url", "url %q has no host", redactURL(raw))
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, validationError("url", "url %q has an invalid port", redactURL(raw))
		}
	}
	return u, nil
}

// escapeQuery percent-encodes the bytes of a raw query that a request
// line cannot carry as they are (space, quotes, angle brackets, non-ASCII,
// ...), and a '%' that starts no escape, as browsers and requests do: the
// query goes on the wire as written otherwise. It reports whether it
// changed anything.
func escapeQuery(q string) (string, bool) {
	bad := 0
	for i := 0; i < len(q); i++ {
		if !queryByteOK(q, i) {
			bad++
		}
	}
	if bad == 0 {
		return q, false
	}
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(q)+2*bad)
	for i := 0; i < len(q); i++ {
		if c := q[i]; queryByteOK(q, i) {
			out = append(out, c)
		} else {
			out = append(out, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(out), true
}

// queryByteOK reports whether q[i] may stand in a query as is: RFC 3986's
// unreserved and sub-delimiter characters, ":@/?", the brackets requests
// keeps, and '%' when two hex digits follow.
func queryByteOK(q string, i int) bool {
	c := q[i]
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '%':
		return i+2 < len(q) && isHex(q[i+1]) && isHex(q[i+2])
	}
	return strings.IndexByte("-._~!$&'()*+,;=:@/?[]", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return true
}

func validateHeaders(field string, h map[string]string) error {
	for k, v := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return validationError(field, "header name %q is not valid", k)
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return validationError(field, "header %q has an invalid value (control characters or newlines)", k)
		}
	}
	return nil
}

func validateCookies(field string, c map[string]string) error {
	for k, v := range c {
		if k == "" || !httpguts.ValidHeaderFieldName(k) {
			return validationError(field, "cookie name %q is not valid", k)
		}
		for i := 0; i < len(v); i++ {
			// The bytes RFC 6265 allows (as net/http checks them).
			if b := v[i]; b < 0x20 || b >= 0x7f || b == '"' || b == ';' || b == '\\' {
				return validationError(field, "cookie %q has an invalid value: byte %q is not allowed", k, b)
			}
		}
	}
	return nil
}
