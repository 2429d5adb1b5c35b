package proxy

// One request on the fast path: pick an instance, send the head and body
// over a pooled connection (retrying elsewhere when nothing reached the
// app), then copy the response back as it comes, framed as it came.

import (
	"errors"
	"io"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/driftless/driftless/router/route"
	"github.com/driftless/driftless/router/wire"
)

// maxResponseFields bounds the fields of an instance's response head.
const maxResponseFields = 256

// proxy forwards the request in c.req (its head consumed from c.in) to
// an instance of pool and copies the response to the client. It reports
// whether the connection may carry another request.
func (c *conn) proxy(pool *route.Pool) bool {
	c.start(pool)
	keep := c.forward(pool)
	c.observe()
	c.now = c.x.End
	return keep
}

func (c *conn) forward(pool *route.Pool) bool {
	r := &c.req
	t, ok := c.pick(pool)
	if !ok {
		return c.fail(http.StatusBadGateway, noInstanceBody(pool.App))
	}
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
	for {
		be, n, err = c.send(&t, rest)
		// Upstream time runs from the request's arrival (a clock read
		// less per request; retries count in it).
		c.info.UpstreamTime = time.Since(c.x.Start)
		if err == nil {
			break
		}
		if status, body, ok := bodyAnswer(err); ok {
			// The instance's connection is closed before the body's end:
			// the app reads a short body, not a request. The client's
			// may still be sending: it ends with a lingering close.
			c.unread = errors.Is(err, errBodyTimeout)
			c.s.Log.Debug("request body failed", "remote", c.remote, "app", pool.App, "status", status, "err", err)
			return c.fail(status, body)
		}
		// A streamed body cannot be sent again.
		again, status, body := c.s.Proxy.retry(&t, err, rest == 0)
		if !again {
			return c.fail(status, body)
		}
	}
	// After an early answer the rest of the client's body is still on
	// its connection: that connection ends with the response.
	c.unread = be.partial
	return c.complete(be, n, isHead, closing || be.partial, &t)
}

// complete copies the response whose head is the first n bytes of be.in
// to the client and gives be back to the pool when it can serve another
// request. It reports whether the client connection may carry another.
func (c *conn) complete(be *backend, n int, isHead, closing bool, t *target) bool {
	c.s.Proxy.circuits.success(t.endpoint.Addr)
	clientOK, reuse := c.respond(be, n, isHead, closing, t)
	c.x.End = time.Now() // also when the connection went idle
	if reuse && !be.partial {
		c.s.Proxy.pool.put(be, c.x.End)
	} else {
		_ = be.c.Close()
	}
	return clientOK
}

// errStale is a reused connection failing before any response byte.
var errStale = errors.New("idle connection closed by the instance")

// send writes the request (c.out, then rest body bytes from the client)
// to t's endpoint over a pooled connection, or a new one when t.fresh or
// none is idle, and waits for the response head (of n bytes in be.in).
func (c *conn) send(t *target, rest int64) (be *backend, n int, err error) {
	pl := c.s.Proxy.pool
	if !t.fresh {
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
			if n, ok := c.earlyAnswer(be, err); ok {
				return be, n, nil
			}
			_ = be.c.Close()
			return nil, 0, err
		}
	}
	// The wait for the answer starts once the request is sent: at its
	// arrival, or when a streamed body (an upload may take minutes) ends.
	sent := c.x.Start
	if rest > 0 {
		sent = time.Now()
	}
	_ = be.c.SetReadDeadline(sent.Add(c.s.Proxy.cfg.ResponseHeaderTimeout))
	if n, err = be.in.head(be.c, maxResponseHead, nil); err != nil {
		return nil, 0, stale(err)
	}
	return be, n, nil
}

// streamBody copies the rest bytes of the request body still to come
// from the client to the instance. Each read must bring bytes before the
// body's deadline (Config.bodyDeadline; the time spent writing to the
// instance does not count against the client), else the body fails with
// errBodyTimeout; a body that ends early fails with errBadBody.
func (c *conn) streamBody(be *backend, rest int64) error {
	cfg := &c.s.Proxy.cfg
	start, got := c.x.Start, c.req.ContentLength-rest
	buf := c.in.b // empty: the body's first bytes were sent with the head
	for rest > 0 {
		now := time.Now()
		_ = c.c.SetReadDeadline(cfg.bodyDeadline(start, now, got))
		m, err := c.c.Read(buf[:min(int64(len(buf)), rest)])
		if m > 0 {
			wstart := time.Now()
			if _, werr := be.c.Write(buf[:m]); werr != nil {
				return werr
			}
			start = start.Add(time.Since(wstart)) // the instance's time, not the client's
			rest -= int64(m)
			got += int64(m)
		}
		if err != nil && rest > 0 {
			return bodyError(err)
		}
	}
	// The response takes what it takes; the next request's head gets
	// its own deadline (readHead).
	_ = c.c.SetReadDeadline(time.Time{})
	c.deadline = time.Time{}
	return nil
}

// earlyAnswerWait bounds the wait for an answer an instance sent before
// it stopped taking the request body (it is usually there already).
const earlyAnswerWait = time.Second

// earlyAnswer reads the response head an instance sent before it stopped
// taking the request body (413, 401, a redirect...), when streaming the
// body to it failed with err: that answer is the client's, not a 502.
func (c *exchange) earlyAnswer(be *backend, err error) (n int, ok bool) {
	if _, _, client := bodyAnswer(err); client {
		return 0, false
	}
	_ = be.c.SetReadDeadline(time.Now().Add(min(earlyAnswerWait, c.s.Proxy.cfg.ResponseHeaderTimeout)))
	n, herr := be.in.head(be.c, maxResponseHead, nil)
	if herr != nil {
		return 0, false
	}
	be.partial = true
	return n, true
}

// respond copies the response whose head is the first n bytes of be.in
// to the client. clientOK is false when the client is gone or must be
// closed; reuse whether be can serve another request.
func (c *conn) respond(be *backend, n int, isHead, closing bool, t *target) (clientOK, reuse bool) {
	resp := &c.resp
	for {
		if err := wire.ParseResponse(be.in.buffered()[:n], resp, maxResponseFields); err != nil || resp.Code == http.StatusSwitchingProtocols {
			c.s.Proxy.log.Warn("bad response from instance", "app", t.pool.App, "addr", t.endpoint.Addr, "err", err, "code", resp.Code)
			return c.fail(http.StatusBadGateway, badResponseBody(t.pool.App)), false
		}
		if resp.Code >= 200 {
			break
		}
		// 1xx (103 Early Hints, 100 Continue): passed on; the final
		// response follows.
		c.out = c.responseHead(c.out[:0], t, false, false)
		be.in.r += n
		if err := c.write(c.out); err != nil {
			return false, false
		}
		var err error
		if n, err = be.in.head(be.c, maxResponseHead, nil); err != nil {
			return c.fail(http.StatusBadGateway, noInstanceBody(t.pool.App)), false
		}
	}
	mode := c.mode(isHead)
	switch mode {
	case bodyUnsupported:
		return c.fail(http.StatusBadGateway, unsupportedCodingBody(t.pool.App)), false
	case bodyUntilClose:
		closing = true
	}
	closing = closing || c.s.shutdown.Load()
	c.out = c.responseHead(c.out[:0], t, mode == bodyChunked, closing)
	be.in.r += n
	c.x.Status = resp.Code
	reuse = !resp.Close
	if closing && !c.unread && (mode == bodyNone || mode == bodyLength && resp.ContentLength <= int64(len(be.in.buffered()))) {
		// The whole response goes in one write, the last: over TLS it
		// is sent with the close_notify after it.
		holdLast(c.c)
	}
	var err error
	switch mode {
	case bodyNone:
		err = c.write(c.out)
	case bodyLength:
		err = c.copyLength(be, resp.ContentLength)
	case bodyChunked:
		err = c.copyChunked(be)
	case bodyUntilClose:
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
	if err := c.write(c.out); err != nil {
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
			if werr := c.write(be.in.b[:m]); werr != nil {
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
			if err := c.write(chunk); err != nil {
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
	if err := c.write(c.out); err != nil {
		return err
	}
	for {
		be.in.r, be.in.w = 0, 0
		m, err := be.c.Read(be.in.b)
		if m > 0 {
			if werr := c.write(be.in.b[:m]); werr != nil {
				return werr
			}
			c.x.Bytes += int64(m)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// write writes b to the client, which gets the idle timeout to take it:
// a client that stops reading does not hold the connection (and its
// instance's) for ever.
func (c *conn) write(b []byte) error {
	if c.s.IdleTimeout > 0 {
		_ = c.c.SetWriteDeadline(time.Now().Add(c.s.IdleTimeout))
	}
	_, err := c.c.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Reset, not close: what the client left unread is dropped, not
		// kept by the kernel while it trickles out.
		if tc, ok := netConn(c.c).(interface{ SetLinger(int) error }); ok {
			_ = tc.SetLinger(0)
		}
	}
	return err
}

// fail answers the client with status and a plain text body, and closes
// the connection (false, for the caller to return).
func (c *conn) fail(status int, body string) bool {
	c.failure(status, body)
	_ = c.write(c.out)
	return false
}
