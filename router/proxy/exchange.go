package proxy

// What the fast path knows of a client connection's current request and
// does with it, whichever driver moves the bytes: the event loop
// (loop_linux.go) or a connection's goroutine (fast.go, forward.go).

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/driftless/driftless/router/handlers"
	"github.com/driftless/driftless/router/route"
	"github.com/driftless/driftless/router/wire"
)

// exchange is a client connection's request state on the fast path.
type exchange struct {
	s *Server
	// in holds what the client sent and was not consumed yet; out is the
	// head (and body) being sent, to an instance or to the client.
	in   buffer
	out  []byte
	req  wire.Request
	resp wire.Response
	// remote is the client's address, ip its IP as the X-Forwarded-For
	// entry, trusted whether it is a trusted proxy.
	remote  string
	ip      []byte
	trusted bool
	info    handlers.Info
	x       handlers.Exchange
	id      []byte
}

// clientBuffer is a client connection's initial read buffer; it grows to
// MaxHeaderBytes for a large head.
const clientBuffer = 4 << 10

// newExchange is the exchange of a client connection or an HTTP/2
// stream. It has no buffers: a connection borrows them while it serves a
// request (borrowIn, borrowOut), a stream only out, to send its request
// on (the connection reads the request).
func (s *Server) newExchange(remote string) exchange {
	return exchange{s: s, remote: remote, ip: []byte(handlers.ClientIP(remote)), trusted: s.Proxy.trusted(remote)}
}

// exchangeBuffers are the in and out buffers of exchanges (clientBuffer
// bytes), borrowed while they serve a request: a connection waiting for
// its client holds none (docs/benchmarks.md, run R).
var exchangeBuffers = sync.Pool{New: func() any {
	exchangeBuffersMade.Add(1)
	return new([clientBuffer]byte)
}}

// exchangeBuffersMade counts the buffers exchangeBuffers made: as many as
// the exchanges serving requests at once, not the open connections.
var exchangeBuffersMade atomic.Int64

// borrowIn gives the exchange an in buffer if it has none.
func (e *exchange) borrowIn() {
	if e.in.b == nil {
		e.in = buffer{b: exchangeBuffers.Get().(*[clientBuffer]byte)[:]}
	}
}

// borrowOut gives the exchange an out buffer if it has none.
func (e *exchange) borrowOut() {
	if e.out == nil {
		e.out = exchangeBuffers.Get().(*[clientBuffer]byte)[:0]
	}
}

// giveBack gives the exchange's buffers back; in must hold nothing still
// to be read, and nothing may refer to out any more. A buffer that grew
// (a large head) is left to the collector.
func (e *exchange) giveBack() {
	for _, b := range [][]byte{e.in.b, e.out} {
		if cap(b) == clientBuffer {
			exchangeBuffers.Put((*[clientBuffer]byte)(b[:clientBuffer]))
		}
	}
	e.in, e.out = buffer{}, nil
}

// parse parses the head of n bytes at the start of the buffer and routes
// it; ok is false when the request is one for net/http (see fast.go's
// doc comment), has no route, or a route with instances reached over h2c
// (net/http speaks HTTP/2 to them: h2c.go).
func (e *exchange) parse(n int) (*route.Pool, bool) {
	r := &e.req
	if err := wire.ParseRequest(e.in.buffered()[:n], r, e.s.MaxHeaders); err != nil {
		return nil, false
	}
	if r.Version[7] != '1' || r.Upgrade || r.Expect || r.TransferEncoding || r.Host == nil || !validHost(r.Host) {
		return nil, false
	}
	path, _ := wire.NextItem(r.Target, '?')
	pool := e.s.Proxy.table.Load().Lookup(wire.Transient(r.Host), wire.Transient(path))
	return pool, pool != nil && !pool.HTTP2
}

// start begins the exchange of the parsed request, routed to pool.
func (e *exchange) start(pool *route.Pool) {
	e.info = handlers.Info{Space: pool.Space, App: pool.App, Route: pool.Route}
	e.x = handlers.Exchange{Start: time.Now(), Remote: e.remote, Info: &e.info}
	if e.s.Observer.Logs() {
		e.describe()
	}
}

// observe records the exchange (metrics and access log); its end is now
// if nothing set it.
func (e *exchange) observe() {
	if e.x.End.IsZero() {
		e.x.End = time.Now()
	}
	e.s.Observer.Observe(&e.x)
}

// describe fills the exchange's strings for the access log.
func (e *exchange) describe() {
	r := &e.req
	e.x.Method, e.x.URI, e.x.Proto = string(r.Method), string(r.Target), string(r.Version)
	for _, f := range r.Fields {
		switch {
		case wire.EqualFold(f.Name, "Referer"):
			e.x.Referer = string(f.Value)
		case wire.EqualFold(f.Name, "User-Agent"):
			e.x.UserAgent = string(f.Value)
		}
	}
}

// pick takes the request id (the client's when valid, else a new one:
// handlers.ValidRequestID) and
// chooses the instance, sticky first; false when the pool has none. The
// target is begun: the caller ends it.
func (e *exchange) pick(pool *route.Pool) (target, bool) {
	e.id = e.id[:0]
	var sticky, rejected []byte
	for _, f := range e.req.Fields {
		switch {
		case wire.EqualFold(f.Name, handlers.RequestIDHeader):
			if handlers.ValidRequestID(f.Value) {
				e.id = append(e.id[:0], f.Value...)
			} else {
				rejected = f.Value
			}
		case wire.EqualFold(f.Name, "Cookie") && sticky == nil:
			sticky = cookieValue(f.Value, StickyCookie)
		}
	}
	if len(e.id) == 0 {
		e.id = handlers.AppendRequestID(e.id)
		if rejected != nil {
			handlers.LogRejectedID(e.s.Log, e.remote, rejected, e.id)
		}
	}
	if e.s.Observer.Logs() {
		e.info.ID = string(e.id)
	}
	i, ok := e.s.Proxy.choose(pool, wire.Transient(sticky))
	if !ok {
		return target{}, false
	}
	t := target{pool: pool, info: &e.info}
	t.begin(i)
	return t, true
}

// requestHead appends the head sent to the instance: the client's,
// without hop-by-hop fields, with X-Forwarded-* set (kept from trusted
// proxies only) and the request id.
func (e *exchange) requestHead(out []byte) []byte {
	return append(e.requestFields(out), "\r\n"...)
}

// requestFields appends requestHead's request line and fields, without
// the empty line that ends the head.
func (e *exchange) requestFields(out []byte) []byte {
	r := &e.req
	out = append(out, r.Method...)
	out = append(out, ' ')
	out = append(out, r.Target...)
	out = append(out, " HTTP/1.1\r\n"...)
	var forwardedFor, proto []byte
	for _, f := range r.Fields {
		switch {
		case wire.EqualFold(f.Name, "X-Forwarded-For"):
			if e.trusted {
				if forwardedFor != nil {
					forwardedFor = append(forwardedFor, ", "...)
				}
				forwardedFor = append(forwardedFor, f.Value...)
			}
			continue
		case wire.EqualFold(f.Name, "X-Forwarded-Proto"):
			if e.trusted && (string(f.Value) == "http" || string(f.Value) == "https") {
				proto = f.Value
			}
			continue
		case wire.EqualFold(f.Name, "X-Forwarded-Host"), wire.EqualFold(f.Name, handlers.RequestIDHeader),
			wire.HopByHop(f.Name, r.Connection):
			continue
		}
		out = appendField(out, f.Name, f.Value)
	}
	out = append(out, "X-Forwarded-For: "...)
	if forwardedFor != nil {
		out = append(out, forwardedFor...)
		out = append(out, ", "...)
	}
	out = append(out, e.ip...)
	out = append(out, "\r\n"...)
	out = appendField(out, "X-Forwarded-Host", r.Host)
	if proto == nil {
		proto = e.s.scheme
	}
	out = appendField(out, "X-Forwarded-Proto", proto)
	return appendField(out, handlers.RequestIDHeader, e.id)
}

// bodyMode is how a response's body is framed.
type bodyMode int

const (
	bodyNone bodyMode = iota
	bodyLength
	bodyChunked
	bodyUntilClose
	// bodyUnsupported is a transfer coding other than chunked.
	bodyUnsupported
)

// mode is the framing of the parsed response's body (to a HEAD request
// when isHead).
func (e *exchange) mode(isHead bool) bodyMode {
	resp := &e.resp
	switch {
	case wire.BodyLess(isHead, resp.Code):
		return bodyNone
	case resp.Chunked:
		return bodyChunked
	case resp.TransferEncoding:
		return bodyUnsupported
	case resp.ContentLength < 0:
		return bodyUntilClose
	}
	return bodyLength
}

// responseHead appends the head sent to the client: the instance's,
// without hop-by-hop fields, with the request id, the sticky cookie when
// the app opened a session, and the framing the proxy sends.
func (e *exchange) responseHead(out []byte, t *target, chunked, closing bool) []byte {
	resp := &e.resp
	out = append(out, "HTTP/1.1 "...)
	out = append(out, resp.Status...)
	out = append(out, "\r\n"...)
	var session []byte
	for _, f := range resp.Fields {
		if wire.EqualFold(f.Name, handlers.RequestIDHeader) || wire.HopByHop(f.Name, resp.Connection) ||
			(resp.TransferEncoding && wire.EqualFold(f.Name, "Content-Length")) { // the coding wins; never send both
			continue
		}
		if session == nil && wire.EqualFold(f.Name, "Set-Cookie") && bytes.HasPrefix(f.Value, []byte(SessionCookie+"=")) {
			session = f.Value
		}
		out = appendField(out, f.Name, f.Value)
	}
	if session != nil {
		if ck, err := http.ParseSetCookie(string(session)); err == nil {
			out = appendField(out, "Set-Cookie", stickyFor(ck, t.endpoint.GUID))
		}
	}
	out = appendField(out, handlers.RequestIDHeader, e.id)
	if chunked {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	if closing {
		out = append(out, "Connection: close\r\n"...)
	}
	return append(out, "\r\n"...)
}

// failure puts in e.out the proxy's own answer: status with a plain text
// body, closing the connection.
func (e *exchange) failure(status int, body string) {
	out := append(e.out[:0], "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(status)...)
	out = append(out, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n"...)
	out = appendField(out, handlers.RequestIDHeader, e.id)
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n\r\n"...)
	out = append(out, body...)
	e.out = out
	e.x.Status, e.x.Bytes = status, int64(len(body))
}

func appendField[N, V string | []byte](out []byte, name N, value V) []byte {
	out = append(out, name...)
	out = append(out, ": "...)
	out = append(out, value...)
	return append(out, "\r\n"...)
}

// cookieValue returns the value of the cookie name in a Cookie field's
// value, nil when absent.
func cookieValue(v []byte, name string) []byte {
	for len(v) > 0 {
		var part []byte
		part, v = wire.NextItem(v, ';')
		part = bytes.TrimSpace(part)
		if len(part) > len(name) && part[len(name)] == '=' && string(part[:len(name)]) == name {
			return bytes.Trim(part[len(name)+1:], `"`)
		}
	}
	return nil
}
