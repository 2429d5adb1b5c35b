package proxy

// The frames an HTTP/2 stream (h2stream.go) writes: HEADERS and DATA
// into the connection's write buffer, DATA within the client's flow
// control windows.

import (
	"strconv"

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
// windows (waiting for the client's updates), the last ones when end. It
// does not flush: the caller does before it waits for anything.
func (st *h2stream) writeData(p []byte, end bool) error {
	h := st.h
	h.wmu.Lock()
	defer h.wmu.Unlock()
	for {
		for !st.closed && h.werr == nil && len(p) > 0 && (st.sendWindow <= 0 || h.sendWindow <= 0) {
			// The client sends updates for what it sees: flush first.
			if err := h.flushLocked(); err != nil {
				return err
			}
			h.wcond.Wait()
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
