package core

import (
	utls "github.com/bogdanfinn/utls"
)

// profile is a browser an impersonating client passes for: the TLS
// ClientHello it sends, the User-Agent, and the HTTP/2 settings that
// x/net/http2 lets a client choose.
type profile struct {
	name string
	// hello is the ClientHello, one of the browser specs built into
	// github.com/bogdanfinn/utls (u_parrots.go): the one closest to the
	// target where the library has none of that exact version.
	hello     utls.ClientHelloID
	userAgent string
	h2        h2Settings
}

// h2Settings are the HTTP/2 values of a browser that x/net/http2 can
// send. Its SETTINGS frame always carries ENABLE_PUSH=0,
// INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE and MAX_HEADER_LIST_SIZE, then
// HEADER_TABLE_SIZE when it is not 4096, in that order; the order, the
// settings a browser sends beyond those, the pseudo-header order and the
// HEADERS priority are x/net/http2's own.
type h2Settings struct {
	headerTableSize   uint32 // SETTINGS_HEADER_TABLE_SIZE; 0: not sent (4096)
	initialWindowSize uint32 // SETTINGS_INITIAL_WINDOW_SIZE (each stream's receive window)
	maxFrameSize      uint32 // SETTINGS_MAX_FRAME_SIZE
	maxHeaderListSize uint32 // SETTINGS_MAX_HEADER_LIST_SIZE; 0: x/net/http2's (10 MiB)
	connWindowUpdate  uint32 // the WINDOW_UPDATE increment on stream 0 after the preface
}

// The HTTP/2 values of each family, as the browsers send them (captures
// of Chrome 131-136, Firefox 133/135 and Safari 18 published with
// github.com/bogdanfinn/tls-client's profiles/*.go, which agree with
// curl-impersonate's). MAX_FRAME_SIZE is 16384, the protocol's default,
// where the browser does not send it: x/net/http2 always does.
var (
	// Chrome: 1:65536;2:0;4:6291456;6:262144, WINDOW_UPDATE 15663105.
	chromeH2 = h2Settings{headerTableSize: 65536, initialWindowSize: 6291456, maxFrameSize: 16384,
		maxHeaderListSize: 262144, connWindowUpdate: 15663105}
	// Firefox: 1:65536;2:0;4:131072;5:16384, WINDOW_UPDATE 12517377.
	firefoxH2 = h2Settings{headerTableSize: 65536, initialWindowSize: 131072, maxFrameSize: 16384,
		connWindowUpdate: 12517377}
	// Safari 18: 2:0;3:100;4:2097152;(8:1;)9:1, WINDOW_UPDATE 10420225.
	safariH2 = h2Settings{initialWindowSize: 2097152, maxFrameSize: 16384, connWindowUpdate: 10420225}
)

// profiles are the impersonation targets, by the names curl_cffi uses.
// Each comment names the utls spec and how it stands to the browser.
var profiles = []*profile{
	// utls HelloChrome_131 (u_parrots.go): Chrome 131, X25519MLKEM768 key
	// share, ALPS 0x4469, GREASE ECH, shuffled extensions.
	{name: "chrome131", hello: utls.HelloChrome_131, h2: chromeH2,
		userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
	// utls HelloChrome_133: Chrome 133, as 131 with the new ALPS
	// codepoint 0x44cd.
	{name: "chrome133a", hello: utls.HelloChrome_133, h2: chromeH2,
		userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36"},
	// utls HelloChrome_133, the newest Chrome in utls: Chrome 136 is
	// taken to send 133's ClientHello (no change to its ciphers,
	// extensions or groups is known between them).
	{name: "chrome136", hello: utls.HelloChrome_133, h2: chromeH2,
		userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36"},
	// utls HelloSafari_16_0, the newest Safari in utls: the same
	// ClientHello as tls-client's Safari_IOS_18_0 capture.
	{name: "safari180", hello: utls.HelloSafari_16_0, h2: safariH2,
		userAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15"},
	// utls HelloSafari_16_0: Safari 18.5 (tls-client's Safari_IOS_18_5
	// capture) no longer offers ecdsa_sha1 in signature_algorithms, which
	// this spec, like 18.0, still does; 18.4 lies between the captures.
	{name: "safari184", hello: utls.HelloSafari_16_0, h2: safariH2,
		userAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.4 Safari/605.1.15"},
	// utls HelloFirefox_120, the newest Firefox in utls: Firefox 133 also
	// offers X25519MLKEM768 (group and key share) and compress_certificate
	// (zlib, brotli, zstd), and its GREASE ECH offers three cipher suites
	// (tls-client's Firefox_133), which this spec does not.
	{name: "firefox133", hello: utls.HelloFirefox_120, h2: firefoxH2,
		userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"},
	// utls HelloFirefox_120: as for firefox133, plus the
	// signed_certificate_timestamp extension Firefox 135 adds.
	{name: "firefox135", hello: utls.HelloFirefox_120, h2: firefoxH2,
		userAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:135.0) Gecko/20100101 Firefox/135.0"},
}

// impersonateAliases name the newest target of each browser, as
// curl_cffi's "chrome", "safari" and "firefox" do.
var impersonateAliases = map[string]string{"chrome": "chrome136", "safari": "safari184", "firefox": "firefox135"}
