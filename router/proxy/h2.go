package proxy

// HTTP/2 on the fast path (Server.FastH2): a TLS connection whose client
// chose h2 by ALPN is served by the connection's goroutine, which reads
// frames (golang.org/x/net/http2's Framer, HPACK through its hpack
// package) and answers SETTINGS, PING, WINDOW_UPDATE, RST_STREAM and
// GOAWAY itself. Each request stream gets a goroutine of its own
// (h2stream.go), or runs on the reading goroutine when it is all there
// is to do (h2inline.go); it forwards the request over HTTP/1.1 through
// the fast path's instance pool, retries and circuits, and writes the response as
// HEADERS and DATA frames into the connection's write buffer: a small
// response leaves in one write (one TLS record). What the fast path does
// not forward itself (no route, a route to h2c instances, a Waker's
// sleeping app, CONNECT, a bad :authority) is served by the Fallback's
// handler through an http.ResponseWriter writing frames (h2handler.go).
// Without FastH2, h2 connections go to net/http's HTTP/2 server.
//
// Bounds. A connection has at most h2MaxStreams open streams
// (SETTINGS_MAX_CONCURRENT_STREAMS); a stream opened beyond it is
// refused with RST_STREAM REFUSED_STREAM (RFC 9113, 5.1.2: a stream
// error; the client may retry it, nothing of it was processed) and the
// connection goes on. Streams the client reset no longer count as open,
// but their goroutines may still be ending: the streams whose goroutines
// have not returned are bounded too, by twice h2MaxStreams, beyond which
// new streams are refused the same way (a client opening and resetting
// streams in a loop, CVE-2023-44487); so a connection has at most
// 2*h2MaxStreams stream goroutines, and one idle that waits for the next
// stream (spawn). Streams opened after a GOAWAY (either side's) are
// refused the same way (TestH2StreamLimit). A stream waiting for the client's
// flow control window (a download the client does not read, or a client
// that never sends WINDOW_UPDATE) waits at most the server's
// IdleTimeout, the time a client has to take any write, the connection's
// writes and HTTP/1.1's alike: it is then reset with CANCEL, its
// instance connection closed rather than pooled, and the connection's
// other streams go on (h2write.go, waitWindow; TestH2WindowTimeout).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// HTTP/2 limits of the fast path's server.
const (
	// h2MaxStreams is SETTINGS_MAX_CONCURRENT_STREAMS (nginx: 128):
	// a stream beyond it, or beyond twice it of streams whose goroutines
	// did not return, is refused (REFUSED_STREAM, headers).
	h2MaxStreams = 128
	// h2StreamWindow is the request body bytes a stream may have in
	// flight (SETTINGS_INITIAL_WINDOW_SIZE); what a stream buffers is
	// bounded by it.
	h2StreamWindow = 256 << 10
	// h2ConnWindow is the connection's receive window.
	h2ConnWindow = 1 << 20
	// h2WriteBuffer is the connection's write buffer: a response of up to
	// about this size leaves in one write.
	h2WriteBuffer = 32 << 10
	// h2ReadBuffer is the connection's read buffer.
	h2ReadBuffer = 16 << 10
)

// errH2Closed is a write on a connection that is gone; errStreamReset a
// stream its client (or the server) reset.
var (
	errH2Closed    = errors.New("http2 connection closed")
	errStreamReset = errors.New("http2 stream reset")
)

// h2conn is an HTTP/2 connection on the fast path.
type h2conn struct {
	s      *Server
	cc     *conn
	c      net.Conn
	br     h2Reader
	fr     *http2.Framer
	remote string

	// The write side, guarded by wmu: the framer writes into bw, flushed
	// to c. wcond signals window changes and the connection's end.
	wmu          sync.Mutex
	wcond        sync.Cond
	bw           h2Buffer
	henc         *hpack.Encoder
	hbuf         bytes.Buffer
	sendWindow   int64
	peerWindow   int64 // the client's SETTINGS_INITIAL_WINDOW_SIZE
	peerMaxFrame int
	werr         error
	wdeadline    time.Time

	// The streams, guarded by mu.
	mu        sync.Mutex
	streams   map[uint32]*h2stream
	lastID    uint32
	goingAway bool
	wg        sync.WaitGroup
	// free are ended streams to reuse (h2FreeStreams at most).
	free []*h2stream
	// work hands a stream to the connection's idle goroutine
	// (idleWorker set while there is one); closed at the end.
	work       chan *h2stream
	idleWorker atomic.Bool
	// ended carries the end of a read loop that another goroutine took
	// over from the connection's (h2inline.go).
	ended chan error

	// open counts the streams not closed yet (SETTINGS_MAX_CONCURRENT_
	// STREAMS bounds it): a stream whose goroutine sent its last frame no
	// longer counts, as the client sees it.
	open atomic.Int32

	// recvWindow is what the client may still send on the connection
	// (read loop only).
	recvWindow int64
}

// serveH2 serves the HTTP/2 connection c's goroutine took over after the
// handshake, until it ends.
func (c *conn) serveH2() {
	c.giveBack() // HTTP/1.1's (h2c's preface was copied out): the streams have their own
	h := &h2conn{s: c.s, cc: c, c: c.c, remote: c.remote, streams: map[uint32]*h2stream{}, work: make(chan *h2stream), ended: make(chan error, 1),
		sendWindow: 65535, peerWindow: 65535, peerMaxFrame: 16384, recvWindow: h2ConnWindow}
	h.wcond.L = &h.wmu
	h.br.src = c.c
	h.bw.h = h
	h.fr = http2.NewFramer(&h.bw, &h.br)
	h.fr.SetReuseFrames()
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.fr.MaxHeaderListSize = uint32(c.s.MaxHeaderBytes)
	h.henc = hpack.NewEncoder(&h.hbuf)
	c.s.mu.Lock()
	c.h2c = h
	c.s.mu.Unlock()
	err := h.serve()
	if errors.Is(err, errDetached) {
		err = <-h.ended // from the goroutine that took the read loop last
	}
	h.close(err)
}

// h2Writer is the connection's writes (h.wmu held): the client has at
// least half of IdleTimeout to take each (the deadline moves only when
// less than that is left: a timer change per write is measurable).
type h2Writer struct{ h *h2conn }

func (w h2Writer) Write(p []byte) (int, error) {
	h := w.h
	if h.s.IdleTimeout > 0 {
		if now := time.Now(); h.wdeadline.Sub(now) < h.s.IdleTimeout/2 {
			h.wdeadline = now.Add(h.s.IdleTimeout)
			_ = h.c.SetWriteDeadline(h.wdeadline)
		}
	}
	n, err := h.c.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if tc, ok := netConn(h.c).(interface{ SetLinger(int) error }); ok {
			_ = tc.SetLinger(0)
		}
	}
	return n, err
}

// serve reads the preface and frames until the connection ends.
func (h *h2conn) serve() error {
	_ = h.c.SetReadDeadline(time.Now().Add(h.s.ReadHeaderTimeout))
	h.wmu.Lock()
	_ = h.fr.WriteSettings(
		http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: h2MaxStreams},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: h2StreamWindow},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(h.s.MaxHeaderBytes)},
	)
	_ = h.fr.WriteWindowUpdate(0, h2ConnWindow-65535)
	err := h.flushLocked()
	h.wmu.Unlock()
	if err != nil {
		return err
	}
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(&h.br, preface); err != nil {
		return fmt.Errorf("reading the client preface: %w", err)
	}
	if string(preface) != http2.ClientPreface {
		return errors.New("bad client preface")
	}
	f, err := h.fr.ReadFrame()
	if err != nil {
		return h.frameError(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		h.goAway(http2.ErrCodeProtocol)
		return errors.New("client preface not followed by SETTINGS")
	}
	if err := h.settings(sf); err != nil {
		return err
	}
	return h.readLoop()
}

// readLoop reads and handles frames until the connection ends, or until
// a stream served inline gave the loop to another goroutine
// (errDetached, h2inline.go).
func (h *h2conn) readLoop() error {
	var deadline time.Time
	for {
		if h.br.Buffered() == 0 {
			if err := h.flush(); err != nil {
				return err
			}
			// The idle deadline moves only when less than half of it
			// is left (a timer change per frame is measurable).
			if now := time.Now(); h.s.IdleTimeout > 0 && deadline.Sub(now) < h.s.IdleTimeout/2 {
				deadline = now.Add(h.s.IdleTimeout)
				_ = h.c.SetReadDeadline(deadline)
			}
			h.mu.Lock()
			h.cc.idle.Store(len(h.streams) == 0) // as the streams' ends store it
			h.mu.Unlock()
			if h.s.shutdown.Load() && h.shutdownNow() {
				return nil
			}
			if err := h.br.wait(); err != nil {
				h.cc.idle.Store(false)
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					return err
				}
				if h.s.shutdown.Load() || h.active() == 0 && time.Now().After(deadline) {
					if h.shutdownNow() {
						return nil
					}
				}
				deadline = time.Time{} // streams in flight: wait on
				continue
			}
			h.cc.idle.Store(false)
		}
		f, err := h.fr.ReadFrame()
		if err != nil {
			if err = h.frameError(err); err != nil {
				return err
			}
			continue
		}
		if err := h.frame(f); err != nil {
			return err
		}
	}
}

// shutdownNow says goodbye (GOAWAY, once) and reports whether the
// connection can end now: no stream is in flight.
func (h *h2conn) shutdownNow() bool {
	h.mu.Lock()
	first := !h.goingAway
	h.goingAway = true
	n := len(h.streams)
	h.mu.Unlock()
	if first {
		h.goAway(http2.ErrCodeNo)
	}
	return n == 0
}

// active is the number of streams in flight.
func (h *h2conn) active() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.streams)
}

// frameError handles an error of ReadFrame: a stream error resets the
// stream, a connection error sends GOAWAY; it returns the error that ends
// the connection (nil for a stream error).
func (h *h2conn) frameError(err error) error {
	var se http2.StreamError
	if errors.As(err, &se) {
		h.mu.Lock()
		st := h.streams[se.StreamID]
		if se.StreamID > h.lastID && se.StreamID%2 == 1 {
			h.lastID = se.StreamID // a refused stream is still used up
		}
		h.mu.Unlock()
		if st != nil {
			st.cancel()
		}
		h.reset(se.StreamID, se.Code)
		return nil
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		h.goAway(http2.ErrCode(ce))
		return fmt.Errorf("http2 connection error: %w", err)
	}
	if errors.Is(err, http2.ErrFrameTooLarge) {
		h.goAway(http2.ErrCodeFrameSize)
	}
	return err
}

// frame handles a frame of the client.
func (h *h2conn) frame(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return h.headers(f)
	case *http2.DataFrame:
		return h.data(f)
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		return h.settings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			return nil
		}
		h.wmu.Lock()
		err := h.fr.WritePing(true, f.Data)
		h.wmu.Unlock()
		return err
	case *http2.WindowUpdateFrame:
		return h.windowUpdate(f)
	case *http2.RSTStreamFrame:
		if h.idle(f.StreamID) {
			return h.connError(http2.ErrCodeProtocol, "RST_STREAM on an idle stream")
		}
		h.mu.Lock()
		st := h.streams[f.StreamID]
		h.mu.Unlock()
		if st != nil {
			st.cancel()
		}
	case *http2.GoAwayFrame:
		h.mu.Lock()
		h.goingAway = true
		h.mu.Unlock()
	case *http2.PushPromiseFrame:
		return h.connError(http2.ErrCodeProtocol, "PUSH_PROMISE from a client")
	case *http2.PriorityFrame:
		if f.StreamID == f.StreamDep {
			h.reset(f.StreamID, http2.ErrCodeProtocol)
		}
	}
	return nil // other frames are ignored (RFC 9113, 4.1)
}

// idle reports whether id names a stream the client did not open yet.
func (h *h2conn) idle(id uint32) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return id > h.lastID
}

// connError ends the connection with a GOAWAY of code.
func (h *h2conn) connError(code http2.ErrCode, why string) error {
	h.goAway(code)
	return fmt.Errorf("http2 connection error %v: %s", code, why)
}

// settings applies the client's settings and acknowledges them.
func (h *h2conn) settings(f *http2.SettingsFrame) error {
	if err := f.ForeachSetting(func(s http2.Setting) error { return s.Valid() }); err != nil {
		return h.frameError(err)
	}
	h.wmu.Lock()
	defer h.wmu.Unlock()
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingInitialWindowSize:
			// Every stream's window moves by the difference.
			delta := int64(s.Val) - h.peerWindow
			h.peerWindow = int64(s.Val)
			h.mu.Lock()
			for _, st := range h.streams {
				st.sendWindow += delta
			}
			h.mu.Unlock()
			h.wcond.Broadcast()
		case http2.SettingMaxFrameSize:
			h.peerMaxFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			h.henc.SetMaxDynamicTableSize(min(s.Val, 4096))
		}
		return nil
	})
	if err != nil {
		return err
	}
	return h.fr.WriteSettingsAck()
}

// windowUpdate adds to the connection's or a stream's send window.
func (h *h2conn) windowUpdate(f *http2.WindowUpdateFrame) error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	if f.StreamID == 0 {
		h.sendWindow += int64(f.Increment)
		if h.sendWindow > 1<<31-1 {
			h.wmu.Unlock()
			err := h.connError(http2.ErrCodeFlowControl, "connection window overflow")
			h.wmu.Lock()
			return err
		}
		h.wcond.Broadcast()
		return nil
	}
	h.mu.Lock()
	st := h.streams[f.StreamID]
	h.mu.Unlock()
	if st == nil {
		return nil
	}
	st.sendWindow += int64(f.Increment)
	if st.sendWindow > 1<<31-1 {
		st.resetLocked(http2.ErrCodeFlowControl)
	}
	h.wcond.Broadcast()
	return nil
}

// data passes a DATA frame's payload to its stream's body.
func (h *h2conn) data(f *http2.DataFrame) error {
	n := int64(f.Length) // padding counts against the windows too
	h.recvWindow -= n
	if h.recvWindow < 0 {
		return h.connError(http2.ErrCodeFlowControl, "connection window exceeded")
	}
	if h.recvWindow < h2ConnWindow/2 {
		h.wmu.Lock()
		_ = h.fr.WriteWindowUpdate(0, uint32(h2ConnWindow-h.recvWindow))
		h.wmu.Unlock()
		h.recvWindow = h2ConnWindow
	}
	h.mu.Lock()
	st := h.streams[f.StreamID]
	idle := f.StreamID > h.lastID
	h.mu.Unlock()
	if idle {
		return h.connError(http2.ErrCodeProtocol, "DATA on an idle stream")
	}
	if st == nil {
		// A stream that ended (DATA may have been in flight when it
		// was reset).
		h.reset(f.StreamID, http2.ErrCodeStreamClosed)
		return nil
	}
	st.body.mu.Lock()
	eof, drop := st.body.eof, st.body.done || st.body.err != nil
	st.body.mu.Unlock()
	switch {
	case eof && !drop:
		st.cancel() // DATA after END_STREAM
		h.reset(f.StreamID, http2.ErrCodeStreamClosed)
		return nil
	case drop:
		return nil // nobody reads the body: the stream's end resets it
	}
	if code := st.received(f.Data(), n, f.StreamEnded()); code != http2.ErrCodeNo {
		st.cancel()
		h.reset(f.StreamID, code)
	}
	return nil
}

// reset sends RST_STREAM for stream id.
func (h *h2conn) reset(id uint32, code http2.ErrCode) {
	h.wmu.Lock()
	_ = h.fr.WriteRSTStream(id, code)
	h.wmu.Unlock()
}

// goAway sends GOAWAY with the last stream the server took, at once.
func (h *h2conn) goAway(code http2.ErrCode) {
	h.mu.Lock()
	last := h.lastID
	h.mu.Unlock()
	h.wmu.Lock()
	_ = h.fr.WriteGoAway(last, code, nil)
	_ = h.flushLocked()
	h.wmu.Unlock()
}

// flush sends what the write buffer holds.
func (h *h2conn) flush() error {
	h.wmu.Lock()
	defer h.wmu.Unlock()
	return h.flushLocked()
}

func (h *h2conn) flushLocked() error {
	if h.werr != nil {
		return h.werr
	}
	if h.bw.Buffered() == 0 {
		return nil
	}
	if err := h.bw.Flush(); err != nil {
		h.werr = fmt.Errorf("%w: %w", errH2Closed, err)
		_ = h.c.Close() // the read loop sees it
		h.wcond.Broadcast()
		return h.werr
	}
	return nil
}

// close ends the connection: its streams are cancelled and waited for.
func (h *h2conn) close(err error) {
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		h.s.Log.Debug("http2 connection ended", "remote", h.remote, "err", err)
	}
	h.wmu.Lock()
	_ = h.flushLocked()
	if h.werr == nil {
		h.werr = errH2Closed
	}
	h.wcond.Broadcast()
	h.wmu.Unlock()
	h.mu.Lock()
	h.goingAway = true
	streams := make([]*h2stream, 0, len(h.streams))
	for _, st := range h.streams {
		streams = append(streams, st)
	}
	h.mu.Unlock()
	for _, st := range streams {
		st.cancel()
	}
	_ = h.c.Close()
	h.wg.Wait()
	close(h.work) // the idle goroutine ends
	// Nothing reads or writes the connection any more: what its buffers
	// still hold (a frame read in part, frames written after its writes
	// failed) goes.
	h.br.release()
	h.wmu.Lock()
	h.bw.discard()
	h.wmu.Unlock()
}
