package proxy

// An HTTP/2 stream's request forwarded on the fast path: over HTTP/1.1
// to an instance, through the pool, retries and circuits of forward.go,
// the response written back as HEADERS and DATA frames (a chunked one
// decoded, its trailers as trailing HEADERS).

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/driftless/driftless/router/handlers"
	"github.com/driftless/driftless/router/route"
	"github.com/driftless/driftless/router/wire"
)

// route is the pool the fast path forwards the stream's request to;
// false when the request is the handler's (h2handler.go).
func (st *h2stream) route() (*route.Pool, bool) {
	if st.method == "CONNECT" || st.truncated || !validHost(st.authority) {
		return nil, false
	}
	path, _ := wire.NextItem(st.req.Target, '?')
	pool := st.s.Proxy.table.Load().Lookup(wire.Transient(st.req.Host), wire.Transient(path))
	return pool, pool != nil && !pool.HTTP2
}

// forward proxies the stream's request to an instance of pool and
// records the exchange.
func (st *h2stream) forward(pool *route.Pool) {
	st.start(pool)
	st.proxy(pool)
	st.observe()
	st.reusable = true
}

// isCanceled reports whether the stream was cancelled (its client reset
// it or the connection ended).
func (st *h2stream) isCanceled() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.canceled
}

func (st *h2stream) proxy(pool *route.Pool) {
	t, ok := st.pick(pool)
	if !ok {
		_ = st.answer(http.StatusBadGateway, noInstanceBody(pool.App))
		return
	}
	defer t.end()
	st.borrowOut()
	defer st.giveBack()
	isHead := st.method == http.MethodHead
	chunked := !st.noBody && st.body.declared < 0
	st.out = st.requestFields(st.out)
	if chunked {
		st.out = append(st.out, "Transfer-Encoding: chunked\r\n"...)
	}
	st.out = append(st.out, "\r\n"...)
	var be *backend
	var n int
	var err error
	for {
		be, n, err = st.send(&t, chunked)
		st.info.UpstreamTime = time.Since(st.x.Start)
		if err == nil {
			break
		}
		if st.isCanceled() {
			st.x.Status = 499 // the client went away (nginx's convention)
			return
		}
		if status, body, ok := bodyAnswer(err); ok {
			st.s.Log.Debug("request body failed", "remote", st.remote, "app", pool.App, "status", status, "err", err)
			_ = st.answer(status, body)
			return
		}
		again, status, body := st.s.Proxy.retry(&t, err, st.noBody)
		if !again {
			_ = st.answer(status, body)
			return
		}
	}
	st.complete(be, n, isHead, &t)
}

// send writes the request (st.out, then the body as it arrives) to t's
// endpoint over a pooled connection, or a new one, and waits for the
// response head (of n bytes in be.in).
func (st *h2stream) send(t *target, chunked bool) (be *backend, n int, err error) {
	pl := st.s.Proxy.pool
	if !t.fresh {
		be = pl.get(t.endpoint.Addr, st.x.Start)
	}
	if be == nil {
		st.detach() // a dial may take a while
		if be, err = pl.dial(t.endpoint.Addr); err != nil {
			return nil, 0, err
		}
	}
	if !st.use(be) {
		_ = be.c.Close()
		return nil, 0, errStreamReset
	}
	drop := func(err error) error {
		st.use(nil)
		_ = be.c.Close()
		if be.reused && len(be.in.buffered()) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
			return errors.Join(errStale, err)
		}
		return err
	}
	if _, err = be.c.Write(st.out); err != nil {
		return nil, 0, drop(err)
	}
	sent := st.x.Start
	if !st.noBody {
		if st.expect {
			st.expect = false // once, whatever the attempts
			cont := []hpack.HeaderField{{Name: ":status", Value: "100"}}
			if err := st.writeHeaders(cont, false); err != nil || st.flush() != nil {
				st.use(nil)
				_ = be.c.Close()
				return nil, 0, errStreamReset
			}
		}
		if err = st.streamBody(be, chunked); err != nil {
			if n, ok := st.earlyAnswer(be, err); ok {
				return be, n, nil
			}
			st.use(nil)
			_ = be.c.Close()
			return nil, 0, err
		}
		sent = time.Now()
	}
	if n, err = st.awaitHead(be, sent.Add(st.s.Proxy.cfg.ResponseHeaderTimeout)); err != nil {
		return nil, 0, drop(err)
	}
	return be, n, nil
}

// streamBody copies the request body to the instance as it arrives,
// chunked when its length is unknown (the client's trailers then follow
// the last chunk). Each wait for the body is bounded as on HTTP/1.1
// (Config.bodyDeadline).
func (st *h2stream) streamBody(be *backend, chunked bool) error {
	cfg := &st.s.Proxy.cfg
	start, got := st.x.Start, int64(0)
	b := h2ReadBuffers.Get().(*[h2ReadBuffer]byte) // the copy buffer, a connection's read buffer's size
	defer h2ReadBuffers.Put(b)
	buf := b[:]
	for {
		m, err := st.body.read(buf, cfg.bodyDeadline(start, time.Now(), got))
		if m > 0 {
			out := buf[:m]
			if chunked {
				out = strconv.AppendInt(st.out[:0], int64(m), 16)
				out = append(out, "\r\n"...)
				out = append(append(out, buf[:m]...), "\r\n"...)
				st.out = out
			}
			wstart := time.Now()
			if _, werr := be.c.Write(out); werr != nil {
				return werr
			}
			start = start.Add(time.Since(wstart)) // the instance's time, not the client's
			got += int64(m)
			if rerr := st.refund(); rerr != nil {
				return rerr
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			if chunked {
				return st.lastChunk(be)
			}
			return nil
		case errors.Is(err, errStreamReset):
			return err
		case err != nil:
			return bodyError(err)
		}
	}
}

// lastChunk ends a chunked request body, with the client's trailers.
func (st *h2stream) lastChunk(be *backend) error {
	out := append(st.out[:0], "0\r\n"...)
	st.body.mu.Lock()
	for _, f := range st.body.trailer {
		if len(f.Name) > 0 && f.Name[0] != ':' {
			out = appendField(out, f.Name, f.Value)
		}
	}
	st.body.mu.Unlock()
	out = append(out, "\r\n"...)
	st.out = out
	_, err := be.c.Write(out)
	return err
}

// complete copies the response whose head is the first n bytes of be.in
// to the client and gives be back to the pool when it can serve another
// request.
func (st *h2stream) complete(be *backend, n int, isHead bool, t *target) {
	st.s.Proxy.circuits.success(t.endpoint.Addr)
	reuse := st.respond(be, n, isHead, t)
	st.x.End = time.Now()
	if st.use(nil) && reuse && !be.partial {
		st.s.Proxy.pool.put(be, st.x.End)
	} else {
		_ = be.c.Close()
	}
}

// respond writes the response whose head is the first n bytes of be.in
// as frames; it reports whether be can serve another request.
func (st *h2stream) respond(be *backend, n int, isHead bool, t *target) bool {
	resp := &st.resp
	for {
		if err := wire.ParseResponse(be.in.buffered()[:n], resp, maxResponseFields); err != nil || resp.Code == http.StatusSwitchingProtocols || len(resp.Status) < 3 {
			st.s.Proxy.log.Warn("bad response from instance", "app", t.pool.App, "addr", t.endpoint.Addr, "err", err, "code", resp.Code)
			_ = st.answer(http.StatusBadGateway, badResponseBody(t.pool.App))
			return false
		}
		if resp.Code >= 200 {
			break
		}
		// 1xx: passed on as informational HEADERS; the final response
		// follows.
		if err := st.writeHeaders(st.responseFields(t, false), false); err != nil || st.flush() != nil {
			return false
		}
		be.in.r += n
		st.detach()
		var err error
		if n, err = be.in.head(be.c, maxResponseHead, nil); err != nil {
			_ = st.answer(http.StatusBadGateway, noInstanceBody(t.pool.App))
			return false
		}
	}
	mode := st.mode(isHead)
	if mode == bodyUnsupported {
		_ = st.answer(http.StatusBadGateway, unsupportedCodingBody(t.pool.App))
		return false
	}
	fields := st.responseFields(t, true)
	be.in.r += n
	st.x.Status = resp.Code
	end := mode == bodyNone || mode == bodyLength && resp.ContentLength == 0
	if err := st.writeHeaders(fields, end); err != nil {
		return false
	}
	st.headersSent = true
	if !end && (mode != bodyLength || int64(len(be.in.buffered())) < resp.ContentLength) {
		st.detach() // the body has yet to arrive
	}
	var err error
	switch {
	case end:
		err = st.flush()
	case mode == bodyLength:
		err = st.copyLength(be, resp.ContentLength)
	case mode == bodyChunked:
		err = st.copyChunked(be)
	default:
		_ = st.copyUntilClose(be) // the instance closed the connection
		return false
	}
	// A response cut short: the stream is reset (finish).
	return err == nil && !resp.Close && len(be.in.buffered()) == 0
}

// responseFields are the response head's fields as HTTP/2 sends them:
// lowercase, without hop-by-hop fields, with the request id and the
// sticky cookie (final responses) when the app opened a session. They
// point into the head and st's scratch space, and are never indexed
// (HPACK's dynamic table would keep them).
func (st *h2stream) responseFields(t *target, final bool) []hpack.HeaderField {
	resp := &st.resp
	need := 0
	for _, f := range resp.Fields {
		need += len(f.Name)
	}
	if cap(st.names) < need {
		st.names = make([]byte, 0, need)
	}
	names := st.names[:0]
	fs := append(st.hf[:0], hpack.HeaderField{Name: ":status", Value: wire.Transient(resp.Status[:3]), Sensitive: true})
	var session []byte
	for _, f := range resp.Fields {
		if wire.EqualFold(f.Name, handlers.RequestIDHeader) || wire.HopByHop(f.Name, resp.Connection) ||
			(resp.TransferEncoding && wire.EqualFold(f.Name, "Content-Length")) {
			continue
		}
		if final && session == nil && wire.EqualFold(f.Name, "Set-Cookie") && bytes.HasPrefix(f.Value, []byte(SessionCookie+"=")) {
			session = f.Value
		}
		i := len(names)
		for _, c := range f.Name {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			names = append(names, c)
		}
		fs = append(fs, hpack.HeaderField{Name: wire.Transient(names[i:]), Value: wire.Transient(f.Value), Sensitive: true})
	}
	if session != nil {
		if ck, err := http.ParseSetCookie(string(session)); err == nil {
			fs = append(fs, hpack.HeaderField{Name: "set-cookie", Value: stickyFor(ck, t.endpoint.GUID), Sensitive: true})
		}
	}
	fs = append(fs, hpack.HeaderField{Name: "x-request-id", Value: wire.Transient(st.id), Sensitive: true})
	st.hf, st.names = fs, names
	return fs
}

// copyLength writes a body of n bytes, the first of them in be.in.
func (st *h2stream) copyLength(be *backend, n int64) error {
	avail := be.in.buffered()
	k := min(n, int64(len(avail)))
	if err := st.writeData(avail[:k], k == n); err != nil {
		return err
	}
	be.in.r += int(k)
	st.x.Bytes = k
	if n > k {
		_ = be.c.SetReadDeadline(time.Time{}) // a download takes what it takes
	}
	for rest := n - k; rest > 0; {
		if err := st.flush(); err != nil {
			return err
		}
		be.in.r, be.in.w = 0, 0
		m, err := be.c.Read(be.in.b[:min(int64(len(be.in.b)), rest)])
		if m > 0 {
			rest -= int64(m)
			if werr := st.writeData(be.in.b[:m], rest == 0); werr != nil {
				return werr
			}
			st.x.Bytes += int64(m)
		}
		if err != nil && rest > 0 {
			return err
		}
	}
	return st.flush()
}

// copyUntilClose writes a body that ends when the instance closes the
// connection.
func (st *h2stream) copyUntilClose(be *backend) error {
	_ = be.c.SetReadDeadline(time.Time{})
	avail := be.in.buffered()
	if err := st.writeData(avail, false); err != nil {
		return err
	}
	st.x.Bytes = int64(len(avail))
	be.in.r = be.in.w
	for {
		if err := st.flush(); err != nil {
			return err
		}
		be.in.r, be.in.w = 0, 0
		m, err := be.c.Read(be.in.b)
		if m > 0 {
			if werr := st.writeData(be.in.b[:m], false); werr != nil {
				return werr
			}
			st.x.Bytes += int64(m)
		}
		if errors.Is(err, io.EOF) {
			if werr := st.writeData(nil, true); werr != nil {
				return werr
			}
			return st.flush()
		}
		if err != nil {
			return err
		}
	}
}

// errChunk is an instance's chunked body the proxy cannot decode.
var errChunk = errors.New("malformed chunked response body")

// copyChunked decodes a chunked body into DATA frames as it arrives
// (each read is sent at once: server-sent events are not held back) and
// sends its trailers as the stream's last HEADERS.
func (st *h2stream) copyChunked(be *backend) error {
	_ = be.c.SetReadDeadline(time.Time{})
	for {
		line, err := st.backendLine(be)
		if err != nil {
			return err
		}
		size, _ := wire.NextItem(line, ';')
		n, perr := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if perr != nil || n < 0 {
			return errChunk
		}
		if n == 0 {
			break
		}
		for n > 0 {
			if len(be.in.buffered()) == 0 {
				if err := st.flush(); err != nil {
					return err
				}
				if err := be.in.fill(be.c, len(be.in.b)); err != nil {
					return err
				}
			}
			avail := be.in.buffered()
			k := min(n, int64(len(avail)))
			if err := st.writeData(avail[:k], false); err != nil {
				return err
			}
			be.in.r += int(k)
			n -= k
			st.x.Bytes += k
		}
		if line, err = st.backendLine(be); err != nil || len(line) != 0 {
			return errors.Join(errChunk, err)
		}
	}
	var trailers []hpack.HeaderField
	for {
		line, err := st.backendLine(be)
		if err != nil {
			return err
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			return errChunk
		}
		if wire.HopByHop(name, nil) || wire.EqualFold(name, "Content-Length") {
			continue
		}
		trailers = append(trailers, hpack.HeaderField{Name: string(bytes.ToLower(name)), Value: string(bytes.TrimSpace(value)), Sensitive: true})
	}
	var err error
	if len(trailers) > 0 {
		err = st.writeHeaders(trailers, true)
	} else {
		err = st.writeData(nil, true)
	}
	if err != nil {
		return err
	}
	return st.flush()
}

// maxChunkLine bounds a chunk-size or trailer line of a response.
const maxChunkLine = 4 << 10

// backendLine consumes the next line of be's response (without its line
// end); it is valid until be.in is read into again.
func (st *h2stream) backendLine(be *backend) ([]byte, error) {
	for {
		avail := be.in.buffered()
		if i := bytes.IndexByte(avail, '\n'); i >= 0 {
			be.in.r += i + 1
			return bytes.TrimSuffix(avail[:i], []byte("\r")), nil
		}
		if len(avail) >= maxChunkLine {
			return nil, errChunk
		}
		if err := st.flush(); err != nil {
			return nil, err
		}
		if err := be.in.fill(be.c, max(len(be.in.b), maxChunkLine)); err != nil {
			return nil, err
		}
	}
}
