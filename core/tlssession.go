package core

import "crypto/tls"

// tlsSessionCacheSize bounds the TLS sessions a client keeps for
// resumption, one per server name: a new connection to a host seen
// recently resumes its session (an abbreviated handshake, no certificate
// sent, signed or checked again) instead of paying a full one. An entry
// holds a ticket and references to the host's certificates, a few KiB at
// most.
const tlsSessionCacheSize = 4096

// sessionCache returns the TLS session cache for a route's transport: the
// client's one for direct routes; a cache of its own for a route through
// a proxy, so that a session never crosses proxies (resuming it through
// another proxy would tell the server that both connections are one
// client's).
func (b *transportBackend) sessionCache(r Route) tls.ClientSessionCache {
	if r.Proxy != "" {
		return tls.NewLRUClientSessionCache(tlsSessionCacheSize)
	}
	return b.sessions
}
