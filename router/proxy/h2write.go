package proxy

// The frames an HTTP/2 stream (h2stream.go) writes: HEADERS and DATA
// into the connection's write buffer, DATA within the client's flow
// control windows.

import (
	"fmt"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// writeFailed notes a failed write: the connection is done (h.wmu held).
func (h *h2conn) writeFailed(err error) error {
	if h.werr == nil {
		h.werr = err
		_ = h.c.Close()
		h.wcond.Broadcast()
	}
	return h.werr
}

// writeHeaders writes fields as the stream's HEADERS (and CONTINUATION)
// frames, the last ones when end.
func (st *h2stream) writeHeaders(fields []hpack.HeaderField, end bool) error {
	h := st.h
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if h.werr != nil {
		return h.werr
	}
	if st.closed {
		return errStreamReset
	}
	h.hbuf.Reset()
	for _, f := range fields {
		_ = h.henc.WriteField(f)
	}
	block := h.hbuf.Bytes()
	for first := true; first || len(block) > 0; first = false {
		frag := block[:min(len(block), h.peerMaxFrame)]
		block = block[len(frag):]
		var err error
		if first {
			err = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: st.sid, BlockFragment: frag, EndStream: end, EndHeaders: len(block) == 0})
		} else {
			err = h.fr.WriteContinuation(st.sid, len(block) == 0, frag)
		}
		if err != nil {
			return h.writeFailed(err)
		}
	}
	if end {
		st.markClosed()
	}
	return nil
}

// writeData writes p as the stream's DATA frames within the flow control
// windows (waiting for the client's updates, waitWindow), the last ones
// when end. It does not flush: the caller does before it waits for
// anything.
func (st *h2stream) writeData(p []byte, end bool) error {
	h := st.h
	h.wmu.Lock()
	defer h.wmu.Unlock()
	for {
		if len(p) > 0 && (st.sendWindow <= 0 || h.sendWindow <= 0) {
			if err := st.waitWindow(); err != nil {
				return err
			}
		}
		if h.werr != nil {
			return h.werr
		}
		if st.closed {
			return errStreamReset
		}
		n := min(int64(len(p)), st.sendWindow, h.sendWindow, int64(h.peerMaxFrame))
		last := end && n == int64(len(p))
		if err := h.fr.WriteData(st.sid, last, p[:n]); err != nil {
			return h.writeFailed(err)
		}
		st.sendWindow -= n
		h.sendWindow -= n
		p = p[n:]
		if last {
			st.markClosed()
		}
		if len(p) == 0 {
			return nil
		}
	}
}

// errStreamTimeout is a stream the server reset because its client kept
// the flow control window closed for longer than the write timeout.
var errStreamTimeout = fmt.Errorf("%w: the client did not open the flow control window in time", errStreamReset)

// waitWindow waits (h.wmu held, released while it waits) until the
// stream and the connection may send DATA again, the stream ends or the
// connection does. Each wait is bounded by the server's IdleTimeout, the
// time a client has to take any write (h2Writer's write deadline, and
// conn.write's on HTTP/1.1): a client that never sends WINDOW_UPDATE
// would otherwise hold the stream's goroutine and its instance
// connection for as long as the connection lives. Past it the stream is
// reset (resetLocked: its instance connection is closed, not pooled)
// and the connection's other streams go on. The code is CANCEL: RFC
// 9113, 7 defines it as "the stream is no longer needed", which is what
// the server decided; FLOW_CONTROL_ERROR is for a peer that violated flow
// control (6.9), which a client leaving a window closed does not do, and
// INTERNAL_ERROR would blame the server. Without IdleTimeout a wait is
// unbounded, as the connection's writes are.
func (st *h2stream) waitWindow() error {
	h := st.h
	st.detach() // the window opens by the client's frames
	var timer *time.Timer
	var deadline time.Time
	for !st.closed && h.werr == nil && (st.sendWindow <= 0 || h.sendWindow <= 0) {
		switch {
		case timer == nil && h.s.IdleTimeout > 0:
			deadline = time.Now().Add(h.s.IdleTimeout)
			timer = time.AfterFunc(h.s.IdleTimeout, h.wakeWriters)
		case timer != nil && !time.Now().Before(deadline):
			st.resetLocked(http2.ErrCodeCancel)
			_ = h.flushLocked() // the client learns it now, whatever the stream's goroutine does next
			h.s.Log.Debug("http2 stream reset: flow control window closed too long", "remote", h.remote, "stream", st.sid)
			return errStreamTimeout
		}
		// The client sends updates for what it sees: flush first.
		if err := h.flushLocked(); err != nil {
			stopTimer(timer)
			return err
		}
		h.wcond.Wait()
	}
	stopTimer(timer)
	return nil
}

// stopTimer stops t, if any.
func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// wakeWriters wakes the streams waiting for window, to look at their
// deadlines.
func (h *h2conn) wakeWriters() {
	h.wmu.Lock()
	h.wcond.Broadcast()
	h.wmu.Unlock()
}

// flush sends what the connection's buffer holds.
func (st *h2stream) flush() error { return st.h.flush() }

// answer sends the proxy's own response: status with a plain text body.
func (st *h2stream) answer(status int, body string) error {
	st.x.Status, st.x.Bytes = status, int64(len(body))
	fs := append(st.hf[:0],
		hpack.HeaderField{Name: ":status", Value: strconv.Itoa(status)},
		hpack.HeaderField{Name: "content-type", Value: "text/plain; charset=utf-8"},
		hpack.HeaderField{Name: "x-content-type-options", Value: "nosniff"},
		hpack.HeaderField{Name: "cache-control", Value: "no-store"},
		hpack.HeaderField{Name: "x-request-id", Value: string(st.id), Sensitive: true},
		hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(body))})
	st.hf = fs
	if err := st.writeHeaders(fs, false); err != nil {
		return err
	}
	st.headersSent = true
	if err := st.writeData([]byte(body), true); err != nil {
		return err
	}
	return st.flush()
}
