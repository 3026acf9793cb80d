module github.com/fastreq/fastreq

go 1.26.0

require (
	github.com/andybalholm/brotli v1.3.0
	github.com/armon/go-socks5 v0.0.0-20160902184237-e75332964ef5
	github.com/bogdanfinn/utls v1.7.4-barnius
	github.com/elazarl/goproxy v1.9.3
	github.com/goccy/go-json v0.12.0
	github.com/klauspost/compress v1.20.5
	github.com/mccutchen/go-httpbin/v2 v2.26.0
	github.com/quic-go/quic-go v0.65.0
	golang.org/x/net v0.62.0
	golang.org/x/sync v0.25.0
	golang.org/x/sys v0.50.0
	golang.org/x/time v0.16.0
)

require (
	github.com/cloudflare/circl v1.5.0 // indirect
	github.com/quic-go/qpack v0.6.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
