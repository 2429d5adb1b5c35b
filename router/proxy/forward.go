package proxy

// One request on the fast path: pick an instance, send the head and body
// over a pooled connection (retrying elsewhere when nothing reached the
// app), then copy the response back as it comes, framed as it came.

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/driftless/driftless/router/handlers"
	"github.com/driftless/driftless/router/route"
	"github.com/driftless/driftless/router/wire"
)

// maxResponseFields bounds the fields of an instance's response head.
const maxResponseFields = 256

// errClientGone is the client failing while its request body streams.
var errClientGone = errors.New("client went away")

// proxy forwards the request in c.req (its head consumed from c.in) to
// an instance of pool and copies the response to the client. It reports
// whether the connection may carry another request.
func (c *conn) proxy(pool *route.Pool) bool {
	c.info = handlers.Info{App: pool.App, Route: pool.Route}
	c.x = handlers.Exchange{Start: time.Now(), Remote: c.remote, Info: &c.info}
	if c.s.Observer.Logs() {
		c.describe()
	}
	keep := c.forward(pool)
	if c.x.End.IsZero() { // forward failed before an instance answered
		c.x.End = time.Now()
	}
	c.now = c.x.End
	c.s.Observer.Observe(&c.x)
	return keep
}

// describe fills the exchange's strings for the access log.
func (c *conn) describe() {
	r := &c.req
	c.x.Method, c.x.URI, c.x.Proto = string(r.Method), string(r.Target), string(r.Version)
	for _, f := range r.Fields {
		switch {
		case wire.EqualFold(f.Name, "Referer"):
			c.x.Referer = string(f.Value)
		case wire.EqualFold(f.Name, "User-Agent"):
			c.x.UserAgent = string(f.Value)
		}
	}
}

func (c *conn) forward(pool *route.Pool) bool {
	r := &c.req
	p := c.s.Proxy
	c.id = c.id[:0]
	var sticky []byte
	for _, f := range r.Fields {
		switch {
		case wire.EqualFold(f.Name, handlers.RequestIDHeader) && handlers.ValidRequestID(f.Value):
			c.id = append(c.id[:0], f.Value...)
		case wire.EqualFold(f.Name, "Cookie") && sticky == nil:
			sticky = cookieValue(f.Value, StickyCookie)
		}
	}
	if len(c.id) == 0 {
		c.id = handlers.AppendRequestID(c.id)
	}
	if c.s.Observer.Logs() {
		c.info.ID = string(c.id)
	}
	i, ok := p.choose(pool, wire.Transient(sticky))
	if !ok {
		return c.fail(http.StatusBadGateway, noInstanceBody(pool.App))
	}
	t := target{pool: pool, info: &c.info}
	t.begin(i)
	defer t.end()

	isHead := string(r.Method) == http.MethodHead
	closing := r.Close
	c.out = c.requestHead(c.out[:0])
	// The body: what came with the head goes in the same write; the rest
	// streams from the client once the head is sent.
	inBuf := min(r.ContentLength, int64(len(c.in.buffered())))
	c.out = append(c.out, c.in.buffered()[:inBuf]...)
	c.in.r += int(inBuf)
	rest := r.ContentLength - inBuf

	var be *backend
	var n int
	var err error
	fresh := false
	for attempt := 1; ; {
		be, n, err = c.send(&t, rest, fresh)
		// Upstream time runs from the request's arrival (a clock read
		// less per request; retries count in it).
		c.info.UpstreamTime = time.Since(c.x.Start)
		if err == nil {
			break
		}
		switch {
		case errors.Is(err, errClientGone):
			c.x.Status = 499
			return false
		case errors.Is(err, errStale) && rest == 0 && !fresh:
			fresh = true // the instance closed an idle connection: once more on a new one
			continue
		case connectFailure(err):
			p.circuits.failure(t.endpoint.Addr)
			if attempt < MaxAttempts && p.another(&t) {
				attempt++
				fresh = false
				p.log.Debug("instance unreachable, trying another", "addr", t.endpoint.Addr, "app", pool.App, "err", err)
				continue
			}
		}
		// (Not r.Host: a streamed body reuses the buffer the head was in.)
		p.log.Warn("no instance answered", "app", pool.App, "route", pool.Route, "err", err)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return c.fail(http.StatusGatewayTimeout, "driftless: "+pool.App+" did not answer in time\n")
		}
		return c.fail(http.StatusBadGateway, noInstanceBody(pool.App))
	}
	p.circuits.success(t.endpoint.Addr)
	clientOK, reuse := c.respond(be, n, isHead, closing, &t)
	c.x.End = time.Now() // also when the connection went idle
	if reuse {
		p.pool.put(be, c.x.End)
	} else {
		_ = be.c.Close()
	}
	return clientOK
}

// errStale is a reused connection failing before any response byte.
var errStale = errors.New("idle connection closed by the instance")

// send writes the request (c.out, then rest body bytes from the client)
// to t's endpoint over a pooled connection, or a new one when fresh or
// none is idle, and waits for the response head (of n bytes in be.in).
func (c *conn) send(t *target, rest int64, fresh bool) (be *backend, n int, err error) {
	pl := c.s.Proxy.pool
	if !fresh {
		be = pl.get(t.endpoint.Addr, c.x.Start)
	}
	if be == nil {
		if be, err = pl.dial(t.endpoint.Addr); err != nil {
			return nil, 0, err
		}
	}
	stale := func(err error) error {
		_ = be.c.Close()
		if be.reused && len(be.in.buffered()) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			return errors.Join(errStale, err)
		}
		return err
	}
	if _, err = be.c.Write(c.out); err != nil {
		return nil, 0, stale(err)
	}
	if rest > 0 {
		if err = c.streamBody(be, rest); err != nil {
			_ = be.c.Close()
			return nil, 0, err
		}
	}
	_ = be.c.SetReadDeadline(c.x.Start.Add(c.s.Proxy.cfg.ResponseHeaderTimeout))
	if n, err = be.in.head(be.c, maxResponseHead, nil); err != nil {
		return nil, 0, stale(err)
	}
	return be, n, nil
}

// streamBody copies the rest bytes of the request body still to come
// from the client to the instance.
func (c *conn) streamBody(be *backend, rest int64) error {
	_ = c.c.SetReadDeadline(time.Time{}) // an upload takes what it takes
	c.deadline = time.Time{}
	buf := c.in.b // empty: the body's first bytes were sent with the head
	for rest > 0 {
		m, err := c.c.Read(buf[:min(int64(len(buf)), rest)])
		if m > 0 {
			if _, werr := be.c.Write(buf[:m]); werr != nil {
				return werr
			}
			rest -= int64(m)
		}
		if err != nil && rest > 0 {
			return errors.Join(errClientGone, err)
		}
	}
	return nil
}

// requestHead appends the head sent to the instance: the client's,
// without hop-by-hop fields, with X-Forwarded-* set (kept from trusted
// proxies only) and the request id.
func (c *conn) requestHead(out []byte) []byte {
	r := &c.req
	out = append(out, r.Method...)
	out = append(out, ' ')
	out = append(out, r.Target...)
	out = append(out, " HTTP/1.1\r\n"...)
	var forwardedFor, proto []byte
	for _, f := range r.Fields {
		switch {
		case wire.EqualFold(f.Name, "X-Forwarded-For"):
			if c.trusted {
				if forwardedFor != nil {
					forwardedFor = append(forwardedFor, ", "...)
				}
				forwardedFor = append(forwardedFor, f.Value...)
			}
			continue
		case wire.EqualFold(f.Name, "X-Forwarded-Proto"):
			if c.trusted && (string(f.Value) == "http" || string(f.Value) == "https") {
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
	out = append(out, c.ip...)
	out = append(out, "\r\n"...)
	out = appendField(out, "X-Forwarded-Host", r.Host)
	if proto == nil {
		proto = []byte("http")
	}
	out = appendField(out, "X-Forwarded-Proto", proto)
	out = appendField(out, handlers.RequestIDHeader, c.id)
	return append(out, "\r\n"...)
}

// respond copies the response whose head is the first n bytes of be.in
// to the client. clientOK is false when the client is gone or must be
// closed; reuse whether be can serve another request.
func (c *conn) respond(be *backend, n int, isHead, closing bool, t *target) (clientOK, reuse bool) {
	resp := &c.resp
	for {
		if err := wire.ParseResponse(be.in.buffered()[:n], resp, maxResponseFields); err != nil || resp.Code == http.StatusSwitchingProtocols {
			c.s.Proxy.log.Warn("bad response from instance", "app", t.pool.App, "addr", t.endpoint.Addr, "err", err, "code", resp.Code)
			return c.fail(http.StatusBadGateway, "driftless: "+t.pool.App+" sent a bad response\n"), false
		}
		if resp.Code >= 200 {
			break
		}
		// 1xx (103 Early Hints, 100 Continue): passed on; the final
		// response follows.
		c.out = c.responseHead(c.out[:0], t, false, false)
		be.in.r += n
		if _, err := c.c.Write(c.out); err != nil {
			return false, false
		}
		var err error
		if n, err = be.in.head(be.c, maxResponseHead, nil); err != nil {
			return c.fail(http.StatusBadGateway, noInstanceBody(t.pool.App)), false
		}
	}
	const (
		none = iota
		length
		chunked
		untilClose
	)
	mode := length
	switch {
	case wire.BodyLess(isHead, resp.Code):
		mode = none
	case resp.Chunked:
		mode = chunked
	case resp.TransferEncoding:
		return c.fail(http.StatusBadGateway, "driftless: "+t.pool.App+" sent an unsupported transfer encoding\n"), false
	case resp.ContentLength < 0:
		mode, closing = untilClose, true
	}
	closing = closing || c.s.shutdown.Load()
	c.out = c.responseHead(c.out[:0], t, mode == chunked, closing)
	be.in.r += n
	c.x.Status = resp.Code
	reuse = !resp.Close
	var err error
	switch mode {
	case none:
		_, err = c.c.Write(c.out)
	case length:
		err = c.copyLength(be, resp.ContentLength)
	case chunked:
		err = c.copyChunked(be)
	case untilClose:
		reuse = false
		err = c.copyUntilClose(be)
	}
	if err != nil {
		return false, false
	}
	// Anything after the response is not ours to keep.
	return !closing, reuse && len(be.in.buffered()) == 0
}

// copyLength writes the head in c.out and a body of n bytes.
func (c *conn) copyLength(be *backend, n int64) error {
	avail := be.in.buffered()
	k := min(n, int64(len(avail)))
	c.out = append(c.out, avail[:k]...)
	be.in.r += int(k)
	if _, err := c.c.Write(c.out); err != nil {
		return err
	}
	c.x.Bytes = k
	if n > k {
		_ = be.c.SetReadDeadline(time.Time{}) // a download takes what it takes
	}
	for rest := n - k; rest > 0; {
		be.in.r, be.in.w = 0, 0
		m, err := be.c.Read(be.in.b[:min(int64(len(be.in.b)), rest)])
		if m > 0 {
			if _, werr := c.c.Write(be.in.b[:m]); werr != nil {
				return werr
			}
			rest -= int64(m)
			c.x.Bytes += int64(m)
		}
		if err != nil && rest > 0 {
			return err
		}
	}
	return nil
}

// copyChunked writes the head in c.out and a chunked body as it arrives
// (each read is written at once: server-sent events are not held back).
func (c *conn) copyChunked(be *backend) error {
	var body wire.Chunked
	first, streaming := true, false
	for {
		avail := be.in.buffered()
		m, done, err := body.Scan(avail)
		if err != nil {
			return err
		}
		chunk := avail[:m]
		if first {
			c.out = append(c.out, chunk...)
			chunk, first = c.out, false
		}
		if len(chunk) > 0 {
			if _, err := c.c.Write(chunk); err != nil {
				return err
			}
		}
		c.x.Bytes += int64(m)
		be.in.r += m
		if done {
			return nil
		}
		if !streaming { // the body goes on: no response-header timeout for it
			_ = be.c.SetReadDeadline(time.Time{})
			streaming = true
		}
		if err := be.in.fill(be.c, len(be.in.b)); err != nil {
			return err
		}
	}
}

// copyUntilClose writes the head in c.out and a body that ends when the
// instance closes the connection.
func (c *conn) copyUntilClose(be *backend) error {
	_ = be.c.SetReadDeadline(time.Time{})
	c.out = append(c.out, be.in.buffered()...)
	c.x.Bytes = int64(len(be.in.buffered()))
	be.in.r = be.in.w
	if _, err := c.c.Write(c.out); err != nil {
		return err
	}
	n, err := io.Copy(c.c, be.c)
	c.x.Bytes += n
	return err
}

// responseHead appends the head sent to the client: the instance's,
// without hop-by-hop fields, with the request id, the sticky cookie when
// the app opened a session, and the framing the proxy sends.
func (c *conn) responseHead(out []byte, t *target, chunked, closing bool) []byte {
	resp := &c.resp
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
			out = appendField(out, "Set-Cookie", stickyFor(ck, t.endpoint.ID))
		}
	}
	out = appendField(out, handlers.RequestIDHeader, c.id)
	if chunked {
		out = append(out, "Transfer-Encoding: chunked\r\n"...)
	}
	if closing {
		out = append(out, "Connection: close\r\n"...)
	}
	return append(out, "\r\n"...)
}

// fail answers the client with status and a plain text body, and closes
// the connection (false, for the caller to return).
func (c *conn) fail(status int, body string) bool {
	out := append(c.out[:0], "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(status), 10)
	out = append(out, ' ')
	out = append(out, http.StatusText(status)...)
	out = append(out, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: close\r\n"...)
	out = appendField(out, handlers.RequestIDHeader, c.id)
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n\r\n"...)
	out = append(out, body...)
	c.out = out
	_, _ = c.c.Write(out)
	c.x.Status, c.x.Bytes = status, int64(len(body))
	return false
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
