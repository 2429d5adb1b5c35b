package proxy

// An HTTP/2 request stream (h2.go): its request as the read loop
// received it, its body as a bounded buffer the client's flow control
// fills, and its life (its frames are written by h2write.go).

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/driftless/driftless/router/wire"
)

// h2stream is a request stream of an h2conn.
type h2stream struct {
	exchange
	h   *h2conn
	sid uint32
	// sendWindow is what the stream may still send; closed is set once it
	// sent its last frame or was reset: no frame may follow. Both are
	// guarded by h.wmu.
	sendWindow int64
	closed     bool
	body       h2body
	// noBody is set when the request came without a body (END_STREAM on
	// its HEADERS).
	noBody bool
	// The request's pseudo-header fields and its regular ones.
	method, scheme, authority, path string
	fields                          []hpack.HeaderField
	truncated                       bool
	// expect is set when the client waits for 100 (Continue) before it
	// sends the body.
	expect bool
	// be is the instance connection in use, closed by cancel; ctxCancel
	// ends the handler path's request. Guarded by mu.
	mu        sync.Mutex
	be        *backend
	canceled  bool
	ctxCancel context.CancelFunc
	// headersSent is set once the final response HEADERS went out; hf
	// and names are scratch space for response fields.
	headersSent bool
	// reusable is set when nothing refers to the stream once it ended.
	reusable bool
	hf       []hpack.HeaderField
	names    []byte
	// il is set while the stream runs on the read loop's goroutine
	// (h2inline.go).
	il *h2inline
}

// h2body is a stream's request body: what the read loop received and
// the stream's goroutine did not take yet, at most the stream's window.
type h2body struct {
	mu  sync.Mutex
	buf []byte
	r   int
	eof bool
	err error
	// done is set when nobody reads the body any more.
	done bool
	// window is what the client may still send; unacked what was read
	// and not given back to it yet.
	window, unacked int64
	// declared is the request's Content-Length (-1 without), got what
	// arrived of it.
	declared, got int64
	trailer       []hpack.HeaderField
	ready         chan struct{}
}

// open reports whether the body takes more data.
func (b *h2body) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.eof && b.err == nil && !b.done
}

// fail ends the body with err (nothing more arrives).
func (b *h2body) fail(err error) {
	b.mu.Lock()
	if b.err == nil {
		b.err = err
	}
	b.mu.Unlock()
	b.notify()
}

func (b *h2body) notify() {
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// read reads the body, waiting until deadline (none if zero) for data.
func (b *h2body) read(p []byte, deadline time.Time) (int, error) {
	for {
		b.mu.Lock()
		if b.r < len(b.buf) {
			n := copy(p, b.buf[b.r:])
			b.r += n
			if b.r == len(b.buf) {
				b.buf, b.r = b.buf[:0], 0
			}
			b.unacked += int64(n)
			b.mu.Unlock()
			return n, nil
		}
		err := b.err
		if err == nil && b.eof {
			err = io.EOF
		}
		b.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if deadline.IsZero() {
			<-b.ready
			continue
		}
		d := time.Until(deadline)
		if d <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		tm := time.NewTimer(d)
		select {
		case <-b.ready:
		case <-tm.C:
		}
		tm.Stop()
	}
}

// h2FreeStreams bounds the streams a connection keeps for reuse.
const h2FreeStreams = 4

// recycled is a stream to reuse, reset, or a new one (h.mu held): a
// connection that carries one request after another (a client keeping
// it open) allocates its buffers once.
func (h *h2conn) recycled() *h2stream {
	n := len(h.free)
	if n == 0 {
		return &h2stream{exchange: h.s.newExchange(h.remote), h: h, body: h2body{ready: make(chan struct{}, 1)}}
	}
	st := h.free[n-1]
	h.free = h.free[:n-1]
	st.reset()
	return st
}

// reset makes an ended stream as new, keeping its slices. Only the read
// loop reuses streams, and nothing else refers to an ended one.
func (st *h2stream) reset() {
	e := &st.exchange
	*e = exchange{s: e.s, remote: e.remote, ip: e.ip, trusted: e.trusted,
		req: wire.Request{Fields: e.req.Fields[:0]}, resp: wire.Response{Fields: e.resp.Fields[:0]}, id: e.id[:0]}
	st.sid, st.sendWindow, st.closed, st.noBody = 0, 0, false, false
	st.method, st.scheme, st.authority, st.path, st.fields, st.truncated, st.expect = "", "", "", "", nil, false, false
	st.be, st.canceled, st.ctxCancel = nil, false, nil
	st.headersSent, st.reusable, st.hf, st.names, st.il = false, false, st.hf[:0], st.names[:0], nil
	b := &st.body
	b.buf, b.r, b.eof, b.err, b.done = b.buf[:0], 0, false, nil, false
	b.window, b.unacked, b.declared, b.got, b.trailer = 0, 0, 0, 0, nil
	select {
	case <-b.ready:
	default:
	}
}

// newStream opens stream id for the request of f (read loop).
func (h *h2conn) newStream(f *http2.MetaHeadersFrame) *h2stream {
	st := h.recycled()
	st.sid, st.noBody, st.fields, st.truncated = f.StreamID, f.StreamEnded(), f.RegularFields(), f.Truncated
	st.body.window, st.body.declared, st.body.eof = h2StreamWindow, -1, st.noBody
	for _, p := range f.PseudoFields() {
		switch p.Name {
		case ":method":
			st.method = p.Value
		case ":scheme":
			st.scheme = p.Value
		case ":authority":
			st.authority = p.Value
		case ":path":
			st.path = p.Value
		}
	}
	return st
}

// headers handles a HEADERS frame (and its CONTINUATIONs): a new
// stream's request, or the trailers of one's body.
func (h *h2conn) headers(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return h.connError(http2.ErrCodeProtocol, "HEADERS on an even stream")
	}
	h.mu.Lock()
	if st := h.streams[id]; st != nil {
		h.mu.Unlock()
		if !f.StreamEnded() || !st.body.open() {
			st.cancel()
			h.reset(id, http2.ErrCodeProtocol)
			return nil
		}
		st.body.mu.Lock()
		st.body.trailer, st.body.eof = f.RegularFields(), true
		bad := st.body.declared >= 0 && st.body.got != st.body.declared
		st.body.mu.Unlock()
		st.body.notify()
		if bad {
			st.cancel()
			h.reset(id, http2.ErrCodeProtocol)
		}
		return nil
	}
	if id <= h.lastID {
		// A stream that ended: trailers may have been in flight when the
		// server reset it.
		h.mu.Unlock()
		h.reset(id, http2.ErrCodeStreamClosed)
		return nil
	}
	h.lastID = id
	// A stream beyond SETTINGS_MAX_CONCURRENT_STREAMS is refused (RFC
	// 9113, 5.1.2: a stream error, REFUSED_STREAM or PROTOCOL_ERROR;
	// REFUSED_STREAM tells the client it may retry). Streams reset by
	// the client no longer count as open, but their goroutines may still
	// be ending: those are bounded too (a client opening and resetting
	// streams in a loop, CVE-2023-44487).
	if h.goingAway || h.open.Load() >= h2MaxStreams || len(h.streams) >= 2*h2MaxStreams {
		h.mu.Unlock()
		h.reset(id, http2.ErrCodeRefusedStream)
		return nil
	}
	st := h.newStream(f)
	if !st.request() {
		h.mu.Unlock()
		h.reset(id, http2.ErrCodeProtocol)
		return nil
	}
	st.sendWindow = h.peerWindow // the read loop's own: settings changes it
	h.streams[id] = st
	h.open.Add(1)
	h.wg.Add(1)
	alone := len(h.streams) == 1
	h.mu.Unlock()
	if alone && st.noBody && h.br.Buffered() == 0 {
		return h.inline(st) // the only thing to do now (h2inline.go)
	}
	h.spawn(st)
	return nil
}

// spawn runs st on the connection's idle goroutine, or on a new one when
// none is idle. The goroutine that ran a stream waits for the next one
// (one at a time per connection): a client sending one request after
// another has them served on a goroutine whose stack already grew (a new
// goroutine's stack growing under TLS writes costs ~5 % of the CPU).
func (h *h2conn) spawn(st *h2stream) {
	select {
	case h.work <- st:
		return
	default:
	}
	go func() {
		for st != nil {
			st.run()
			st = nil
			if h.idleWorker.CompareAndSwap(false, true) {
				st = <-h.work // nil once the connection ended
				h.idleWorker.Store(false)
			}
		}
	}()
}

// h2Version and hostField are request parts that are only read.
var (
	h2Version = []byte("HTTP/2.0")
	hostField = []byte("Host")
)

// bytesOf views s as bytes, which are only read.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// request checks the stream's request (RFC 9113, 8.2 and 8.3) and fills
// the exchange's request from it; false when it is malformed.
func (st *h2stream) request() bool {
	if st.method == "" || st.method != "CONNECT" && (st.scheme == "" || st.path == "") {
		return false
	}
	r := &st.req
	*r = wire.Request{Fields: r.Fields[:0], Method: bytesOf(st.method), Target: bytesOf(st.path),
		Version: h2Version, Host: bytesOf(st.authority)}
	r.Fields = append(r.Fields, wire.Field{Name: hostField})
	var cookies []string
	for _, f := range st.fields {
		switch f.Name {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			return false
		case "te":
			if f.Value != "trailers" {
				return false
			}
		case "host":
			if st.authority == "" {
				st.authority = f.Value
				r.Host = bytesOf(f.Value)
			}
			continue
		case "cookie":
			cookies = append(cookies, f.Value)
			continue
		case "expect":
			// The proxy answers 100 itself before it reads the body
			// (h2forward.go); the instance gets the body as it comes.
			st.expect = strings.EqualFold(f.Value, "100-continue")
			continue
		case "content-length":
			n, err := strconv.ParseInt(f.Value, 10, 64)
			if err != nil || n < 0 || st.body.declared >= 0 && n != st.body.declared {
				return false
			}
			st.body.declared = n
		}
		r.Fields = append(r.Fields, wire.Field{Name: bytesOf(f.Name), Value: bytesOf(f.Value)})
	}
	if len(cookies) > 0 {
		r.Fields = append(r.Fields, wire.Field{Name: []byte("cookie"), Value: bytesOf(strings.Join(cookies, "; "))})
	}
	r.Fields[0].Value = r.Host
	switch {
	case st.noBody && st.body.declared > 0:
		return false
	case st.noBody:
		r.ContentLength = 0
	default:
		r.ContentLength = st.body.declared
	}
	return true
}

// received adds a DATA frame's payload (of n bytes with its padding) to
// the body (read loop); a code other than ErrCodeNo resets the stream.
func (st *h2stream) received(data []byte, n int64, end bool) http2.ErrCode {
	b := &st.body
	b.mu.Lock()
	defer b.notify()
	defer b.mu.Unlock()
	b.window -= n
	if b.window < 0 {
		return http2.ErrCodeFlowControl
	}
	b.got += int64(len(data))
	if b.declared >= 0 && (b.got > b.declared || end && b.got != b.declared) {
		return http2.ErrCodeProtocol
	}
	b.unacked += n - int64(len(data)) // padding: given back with the next update
	if b.r > 0 && b.r == len(b.buf) {
		b.buf, b.r = b.buf[:0], 0
	}
	b.buf = append(b.buf, data...)
	b.eof = end
	return http2.ErrCodeNo
}

// refund gives the client back the window of the body it read, by a
// quarter of the window at least.
func (st *h2stream) refund() error {
	b := &st.body
	b.mu.Lock()
	k := b.unacked
	if b.eof || k < h2StreamWindow/4 {
		b.mu.Unlock()
		return nil
	}
	b.unacked = 0
	b.window += k
	b.mu.Unlock()
	h := st.h
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if st.closed {
		return nil
	}
	if err := h.fr.WriteWindowUpdate(st.sid, uint32(k)); err != nil {
		return h.writeFailed(err)
	}
	return h.flushLocked()
}

// cancel ends the stream from outside its goroutine (a reset, the
// connection's end): no frame follows, its body and instance connection
// fail.
func (st *h2stream) cancel() {
	st.body.fail(errStreamReset)
	st.mu.Lock()
	st.canceled = true
	be, cancel := st.be, st.ctxCancel
	st.mu.Unlock()
	if be != nil {
		_ = be.c.Close()
	}
	if cancel != nil {
		cancel()
	}
	h := st.h
	h.wmu.Lock()
	st.markClosed()
	h.wcond.Broadcast()
	h.wmu.Unlock()
}

// markClosed notes that no frame of the stream may follow (h.wmu held):
// it no longer counts against the limit of streams, as the client sees
// it ended.
func (st *h2stream) markClosed() {
	if !st.closed {
		st.closed = true
		st.h.open.Add(-1)
	}
}

// resetLocked resets the stream with code (h.wmu held): as cancel, its
// body, instance connection and handler's request fail.
func (st *h2stream) resetLocked(code http2.ErrCode) {
	if !st.closed {
		st.markClosed()
		_ = st.h.fr.WriteRSTStream(st.sid, code)
	}
	st.body.fail(errStreamReset)
	st.mu.Lock()
	if st.be != nil {
		_ = st.be.c.Close()
	}
	st.canceled = true
	cancel := st.ctxCancel
	st.mu.Unlock()
	if cancel != nil {
		cancel() // the handler's request (h2handler.go)
	}
}

// use records be as the stream's instance connection (nil: none); false
// when the stream was cancelled.
func (st *h2stream) use(be *backend) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.be = be
	return !st.canceled
}

// run serves the stream's request and ends the stream.
func (st *h2stream) run() {
	defer st.finish()
	defer func() {
		if v := recover(); v != nil {
			st.s.Log.Error("panic serving an HTTP/2 stream", "remote", st.remote, "panic", v)
		}
	}()
	if pool, ok := st.route(); ok {
		st.forward(pool)
		return
	}
	st.detach()
	st.serveHandler()
}

// finish ends the stream: a client still sending a body nobody reads is
// told to stop (RST_STREAM NO_ERROR after the response).
func (st *h2stream) finish() {
	h := st.h
	b := &st.body
	b.mu.Lock()
	unread := !b.eof && b.err == nil
	b.done = true
	b.mu.Unlock()
	h.wmu.Lock()
	if !st.closed {
		_ = h.fr.WriteRSTStream(st.sid, http2.ErrCodeInternal) // ended without its response's end
	} else if unread {
		_ = h.fr.WriteRSTStream(st.sid, http2.ErrCodeNo)
	}
	st.markClosed()
	_ = h.flushLocked()
	h.wmu.Unlock()
	h.mu.Lock()
	delete(h.streams, st.sid)
	n := len(h.streams)
	if n == 0 {
		h.cc.idle.Store(true) // Shutdown wakes the read loop
	}
	// A stream the handler served may still be referred to (a
	// transport's goroutine reading its body): it is not reused.
	if st.reusable && len(h.free) < h2FreeStreams {
		h.free = append(h.free, st)
	}
	h.mu.Unlock()
	if n == 0 && h.s.shutdown.Load() {
		_ = h.c.SetReadDeadline(time.Now()) // the read loop ends the connection
	}
	h.wg.Done()
}
