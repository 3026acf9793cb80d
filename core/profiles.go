package core

import (
	"slices"

	utls "github.com/bogdanfinn/utls"
	"golang.org/x/net/http2"
)

// profile is a browser an impersonating client passes for: the TLS
// ClientHello it sends, its HTTP/2 frames, and the headers it sends with
// a request (the User-Agent among them) in its order.
type profile struct {
	name string
	// hello is the ClientHello, one of the browser specs built into
	// github.com/bogdanfinn/utls (u_parrots.go): the one closest to the
	// target where the library has none of that exact version.
	hello utls.ClientHelloID
	h2    *h2Profile
	// headers are the browser's request headers, lower-case, in the
	// order it sends them. The client sends those the caller does not
	// set; h2Wire puts every request's headers in this order.
	headers [][2]string
	rank    map[string]int // see init
}

// userAgent is the profile's User-Agent.
func (p *profile) userAgent() string {
	for _, h := range p.headers {
		if h[0] == "user-agent" {
			return h[1]
		}
	}
	return ""
}

// h2Profile is how a browser opens an HTTP/2 connection and sends a
// request on it, as h2Wire writes it.
type h2Profile struct {
	// settings is the first SETTINGS frame, in the browser's order. The
	// values the client acts on follow from it (newH2Transport):
	// HEADER_TABLE_SIZE (4096 when absent) bounds the server's HPACK
	// table, INITIAL_WINDOW_SIZE is each stream's receive window,
	// MAX_FRAME_SIZE (16384 when absent) and MAX_HEADER_LIST_SIZE bound
	// what the server sends.
	settings []http2.Setting
	// connWindowUpdate is the WINDOW_UPDATE increment on stream 0 after
	// the SETTINGS.
	connWindowUpdate uint32
	// pseudo is the order of the pseudo-header fields, as curl-impersonate
	// writes it: m(ethod), a(uthority), s(cheme), p(ath).
	pseudo string
	// priority is sent in every HEADERS frame (PRIORITY flag): Weight is
	// the wire value, the browser's weight minus one.
	priority http2.PriorityParam
}

// setting is the value of SETTINGS parameter id in the profile, or def
// when the browser does not send it.
func (h *h2Profile) setting(id http2.SettingID, def uint32) uint32 {
	for _, s := range h.settings {
		if s.ID == id {
			return s.Val
		}
	}
	return def
}

// The HTTP/2 frames and headers of each target are those of
// curl-impersonate (github.com/lexiforest/curl-impersonate, MIT), whose
// wrapper scripts bin/curl_<target> give them (--http2-settings,
// --http2-window-update, --http2-pseudo-headers-order,
// --http2-stream-weight, --http2-stream-exclusive, -H) as captured from
// the browsers (tests/signatures/*.yaml there).
var (
	// Chrome 131-136: 1:65536;2:0;4:6291456;6:262144, 15663105, m,a,s,p,
	// weight 256, exclusive.
	chromeH2 = &h2Profile{
		settings: []http2.Setting{
			{ID: http2.SettingHeaderTableSize, Val: 65536}, {ID: http2.SettingEnablePush, Val: 0},
			{ID: http2.SettingInitialWindowSize, Val: 6291456}, {ID: http2.SettingMaxHeaderListSize, Val: 262144},
		},
		connWindowUpdate: 15663105, pseudo: "masp",
		priority: http2.PriorityParam{Exclusive: true, Weight: 255},
	}
	// Firefox 133/135: 1:65536;2:0;4:131072;5:16384, 12517377, m,p,a,s,
	// weight 42, not exclusive.
	firefoxH2 = &h2Profile{
		settings: []http2.Setting{
			{ID: http2.SettingHeaderTableSize, Val: 65536}, {ID: http2.SettingEnablePush, Val: 0},
			{ID: http2.SettingInitialWindowSize, Val: 131072}, {ID: http2.SettingMaxFrameSize, Val: 16384},
		},
		connWindowUpdate: 12517377, pseudo: "mpas",
		priority: http2.PriorityParam{Weight: 41},
	}
	// Safari 18.0: 2:0;3:100;4:2097152;8:1;9:1, 10420225, m,s,a,p,
	// weight 256, not exclusive. (8 is ENABLE_CONNECT_PROTOCOL, 9
	// NO_RFC7540_PRIORITIES.)
	safari180H2 = &h2Profile{
		settings: []http2.Setting{
			{ID: http2.SettingEnablePush, Val: 0}, {ID: http2.SettingMaxConcurrentStreams, Val: 100},
			{ID: http2.SettingInitialWindowSize, Val: 2097152}, {ID: http2.SettingEnableConnectProtocol, Val: 1},
			{ID: http2.SettingNoRFC7540Priorities, Val: 1},
		},
		connWindowUpdate: 10420225, pseudo: "msap",
		priority: http2.PriorityParam{Weight: 255},
	}
	// Safari 18.4: as 18.0 without ENABLE_CONNECT_PROTOCOL.
	safari184H2 = safari180H2.withoutSetting(http2.SettingEnableConnectProtocol)
)

// withoutSetting is p with the setting id left out of its SETTINGS.
func (p *h2Profile) withoutSetting(id http2.SettingID) *h2Profile {
	q := *p
	q.settings = slices.DeleteFunc(slices.Clone(p.settings), func(s http2.Setting) bool { return s.ID == id })
	return &q
}

// chromeHeaders are Chrome's request headers around its sec-ch-ua and
// User-Agent.
func chromeHeaders(secChUA, userAgent string) [][2]string {
	return [][2]string{
		{"sec-ch-ua", secChUA},
		{"sec-ch-ua-mobile", "?0"},
		{"sec-ch-ua-platform", `"macOS"`},
		{"upgrade-insecure-requests", "1"},
		{"user-agent", userAgent},
		{"accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"},
		{"sec-fetch-site", "none"},
		{"sec-fetch-mode", "navigate"},
		{"sec-fetch-user", "?1"},
		{"sec-fetch-dest", "document"},
		{"accept-encoding", "gzip, deflate, br, zstd"},
		{"accept-language", "en-US,en;q=0.9"},
		{"priority", "u=0, i"},
	}
}

func firefoxHeaders(userAgent string) [][2]string {
	return [][2]string{
		{"user-agent", userAgent},
		{"accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		{"accept-language", "en-US,en;q=0.5"},
		{"accept-encoding", "gzip, deflate, br, zstd"},
		{"upgrade-insecure-requests", "1"},
		{"sec-fetch-dest", "document"},
		{"sec-fetch-mode", "navigate"},
		{"sec-fetch-site", "none"},
		{"sec-fetch-user", "?1"},
		{"priority", "u=0, i"},
		{"te", "trailers"},
	}
}

func safariHeaders(userAgent string) [][2]string {
	return [][2]string{
		{"sec-fetch-dest", "document"},
		{"user-agent", userAgent},
		{"accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		{"sec-fetch-site", "none"},
		{"sec-fetch-mode", "navigate"},
		{"accept-language", "en-US,en;q=0.9"},
		{"priority", "u=0, i"},
		{"accept-encoding", "gzip, deflate, br"},
	}
}

// profiles are the impersonation targets, by the names curl_cffi uses.
// Each comment names the utls spec, and how it is changed where utls has
// none of that browser version, so that its cipher suites, extensions,
// groups, key shares and signature algorithms are those of
// curl-impersonate's capture of the browser (tests/signatures there).
var profiles = []*profile{
	// utls HelloChrome_131 (u_parrots.go): Chrome 131, X25519MLKEM768 key
	// share, ALPS 0x4469, GREASE ECH, shuffled extensions.
	{name: "chrome131", hello: utls.HelloChrome_131, h2: chromeH2,
		headers: chromeHeaders(`"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"`,
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")},
	// utls HelloChrome_133: Chrome 133, as 131 with the new ALPS
	// codepoint 0x44cd.
	{name: "chrome133a", hello: utls.HelloChrome_133, h2: chromeH2,
		headers: chromeHeaders(`"Not(A:Brand";v="99", "Google Chrome";v="133", "Chromium";v="133"`,
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/133.0.0.0 Safari/537.36")},
	// utls HelloChrome_133, the newest Chrome in utls: Chrome 136 sends
	// 133's ClientHello (curl-impersonate's signatures of the two list the
	// same ciphers, extensions and groups).
	{name: "chrome136", hello: utls.HelloChrome_133, h2: chromeH2,
		headers: chromeHeaders(`"Chromium";v="136", "Google Chrome";v="136", "Not.A/Brand";v="99"`,
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/136.0.0.0 Safari/537.36")},
	// Safari 18: utls HelloSafari_16_0 without ecdsa_sha1 in
	// signature_algorithms.
	{name: "safari180", hello: safari18Hello("18.0"), h2: safari180H2,
		headers: safariHeaders("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15")},
	{name: "safari184", hello: safari18Hello("18.4"), h2: safari184H2,
		headers: safariHeaders("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.4 Safari/605.1.15")},
	// Firefox 133: utls HelloFirefox_120 with X25519MLKEM768 (first group
	// and first key share) and compress_certificate (zlib, brotli, zstd).
	// Its GREASE ECH offers utls's two cipher suites, where Firefox offers
	// three (outside the fingerprints).
	{name: "firefox133", hello: firefoxHello("133", false), h2: firefoxH2,
		headers: firefoxHeaders("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0")},
	// Firefox 135: as 133, with signed_certificate_timestamp after
	// delegated_credentials.
	{name: "firefox135", hello: firefoxHello("135", true), h2: firefoxH2,
		headers: firefoxHeaders("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:135.0) Gecko/20100101 Firefox/135.0")},
}

// derivedHello is the ClientHello of utls's spec for base, changed by
// edit (each handshake gets a fresh spec).
func derivedHello(base utls.ClientHelloID, client, version string, edit func(*utls.ClientHelloSpec)) utls.ClientHelloID {
	return utls.ClientHelloID{Client: client, Version: version, SpecFactory: func() (utls.ClientHelloSpec, error) {
		spec, err := utls.UTLSIdToSpec(base)
		if err == nil {
			edit(&spec)
		}
		return spec, err
	}}
}

func safari18Hello(version string) utls.ClientHelloID {
	return derivedHello(utls.HelloSafari_16_0, "Safari", version, func(spec *utls.ClientHelloSpec) {
		for _, e := range spec.Extensions {
			if sa, ok := e.(*utls.SignatureAlgorithmsExtension); ok {
				sa.SupportedSignatureAlgorithms = slices.DeleteFunc(sa.SupportedSignatureAlgorithms,
					func(s utls.SignatureScheme) bool { return s == utls.ECDSAWithSHA1 })
			}
		}
	})
}

func firefoxHello(version string, sct bool) utls.ClientHelloID {
	return derivedHello(utls.HelloFirefox_120, "Firefox", version, func(spec *utls.ClientHelloSpec) {
		var exts []utls.TLSExtension
		for _, e := range spec.Extensions {
			switch e := e.(type) {
			case *utls.SupportedCurvesExtension:
				e.Curves = slices.Insert(e.Curves, 0, utls.X25519MLKEM768)
			case *utls.KeyShareExtension:
				e.KeyShares = slices.Insert(e.KeyShares, 0, utls.KeyShare{Group: utls.X25519MLKEM768})
			case *utls.GREASEEncryptedClientHelloExtension:
				exts = append(exts, &utls.UtlsCompressCertExtension{Algorithms: []utls.CertCompressionAlgo{
					utls.CertCompressionZlib, utls.CertCompressionBrotli, utls.CertCompressionZstd}})
			}
			exts = append(exts, e)
			if _, ok := e.(*utls.FakeDelegatedCredentialsExtension); ok && sct {
				exts = append(exts, &utls.SCTExtension{})
			}
		}
		spec.Extensions = exts
	})
}

// impersonateAliases name the newest target of each browser, as
// curl_cffi's "chrome", "safari" and "firefox" do.
var impersonateAliases = map[string]string{"chrome": "chrome136", "safari": "safari184", "firefox": "firefox135"}

// pseudoNames are the pseudo-header fields by the letters of
// h2Profile.pseudo.
var pseudoNames = map[byte]string{'m': ":method", 'a': ":authority", 's': ":scheme", 'p': ":path"}

// Each profile's rank: its pseudo-header fields first (negative), then
// its headers (lower-case already), in its order; h2Wire sorts a
// request's fields by it.
func init() {
	for _, p := range profiles {
		p.rank = make(map[string]int, len(p.h2.pseudo)+len(p.headers))
		for i := range len(p.h2.pseudo) {
			p.rank[pseudoNames[p.h2.pseudo[i]]] = i - 100
		}
		for i, h := range p.headers {
			p.rank[h[0]] = i
		}
	}
}
