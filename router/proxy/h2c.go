package proxy

// Instances of routes declared with protocol http2 are reached over
// HTTP/2 cleartext with prior knowledge (h2c), whatever the client spoke
// to the router. The HTTP/1.1 fast path hands their requests to net/http
// (exchange.parse), whose ReverseProxy sends them through the h2c
// transport; every other route keeps the fast path.

import (
	"net/http"

	"github.com/driftless/driftless/router/route"
)

// NewH2CTransport is the transport towards the instances of http2 routes:
// NewTransport's, speaking only unencrypted HTTP/2 (net/http's own, Go
// 1.24's Transport.Protocols). Requests are multiplexed over a connection
// per instance.
func NewH2CTransport(cfg Config) *http.Transport {
	t := NewTransport(cfg)
	t.Protocols = new(http.Protocols)
	t.Protocols.SetUnencryptedHTTP2(true)
	return t
}

// transportTo is the transport that reaches e: h2c for an http2 route's
// instance, HTTP/1.1 otherwise.
func (p *Proxy) transportTo(e route.Endpoint) *http.Transport {
	if e.HTTP2 {
		return p.h2c
	}
	return p.transport
}
