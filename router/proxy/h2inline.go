package proxy

// A stream served on the read loop's goroutine. A client that sends one
// request at a time on its connection (a stream without a body, none
// other open, no other frame waiting) has it served by the goroutine
// that read it, as HTTP/1.1 is: handing it to another goroutine costs a
// wake-up per request (Go's scheduler readies the stream's goroutine and
// wakes an idle core's thread to run it, which finds nothing to do once
// the first core took it), and unpinned, on two cores, that put HTTP/2
// below nginx's requests/s at its CPU (docs/benchmarks.md).
//
// While it serves the stream the goroutine does not read the client's
// frames, so the stream gives the read loop to a new goroutine (detach)
// before anything that may wait: a dial, the handler's path, a response
// head slower than h2InlineWait, a body not whole in the buffer, a
// closed flow control window. A client multiplexing streams waits at
// most h2InlineWait for its next frames to be read.

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// h2InlineWait bounds how long a stream served inline waits for its
// response head before it gives the read loop away: what a stream
// opened meanwhile may wait to be read. At 1 ms, 38 % of the streams
// of bench/router's pinned HTTP/2 row (64 connections, the instance
// sharing a core with the load) gave it away, each a new goroutine and
// a timer that fired, and cost 6 % more CPU per request than handing
// every stream over; at 5 ms, 0.1 % did.
const h2InlineWait = 5 * time.Millisecond

// errDetached ends a read loop whose goroutine gave the loop to another
// (the connection goes on there).
var errDetached = errors.New("http2 read loop handed over")

// h2inline is the state of a stream served inline.
type h2inline struct {
	// detached is set once the stream gave the read loop away.
	detached bool
}

// inline serves st on the read loop's goroutine (headers); it returns
// errDetached when the stream gave the read loop to another goroutine
// meanwhile.
func (h *h2conn) inline(st *h2stream) error {
	var il h2inline
	st.il = &il
	st.run()
	// st may be reused by now (finish): only the local state is read.
	if il.detached {
		return errDetached
	}
	return nil
}

// inlined reports whether st runs on the read loop's goroutine and has
// not given the loop away.
func (st *h2stream) inlined() bool { return st.il != nil && !st.il.detached }

// detach gives the read loop to a new goroutine, if st runs on it: the
// stream is about to wait.
func (st *h2stream) detach() {
	if !st.inlined() {
		return
	}
	st.il.detached = true
	h := st.h
	go func() {
		defer func() {
			if v := recover(); v != nil {
				h.s.Log.Error("panic reading an HTTP/2 connection", "remote", h.remote, "panic", v)
				h.ended <- fmt.Errorf("panic: %v", v)
			}
		}()
		if err := h.readLoop(); !errors.Is(err, errDetached) {
			h.ended <- err
		}
	}()
}

// awaitHead waits for the response head on be until deadline (inline,
// at most h2InlineWait before the stream gives the read loop away) and
// returns its length.
func (st *h2stream) awaitHead(be *backend, deadline time.Time) (int, error) {
	if st.inlined() {
		short := time.Now().Add(h2InlineWait)
		if deadline.Before(short) {
			short = deadline
		}
		_ = be.c.SetReadDeadline(short)
		n, err := be.in.head(be.c, maxResponseHead, nil)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			// The long deadline again: a short one left armed would wake
			// the process when it fires.
			_ = be.c.SetReadDeadline(deadline)
			return n, err
		}
		st.detach()
	}
	_ = be.c.SetReadDeadline(deadline)
	return be.in.head(be.c, maxResponseHead, nil)
}
