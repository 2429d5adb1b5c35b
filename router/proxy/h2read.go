package proxy

// The read buffer of an HTTP/2 connection on the fast path, borrowed
// while it holds bytes (as the write buffer is, h2.go): a connection
// waiting for its client's next frame holds none.

import (
	"io"
	"sync"
)

// h2ReadBuffers are the connections' read buffers (h2ReadBuffer bytes).
var h2ReadBuffers = sync.Pool{New: func() any { return new([h2ReadBuffer]byte) }}

// h2Reader buffers what the read loop reads of its connection, as a
// bufio.Reader does, in a buffer borrowed while it holds bytes. Only the
// read loop's goroutine uses it.
type h2Reader struct {
	src  io.Reader
	buf  *[h2ReadBuffer]byte
	r, w int
	// peek is what wait reads into: a connection waiting for its client
	// holds these bytes, not a buffer.
	peek [256]byte
}

// Read reads from the buffer, filling it with one read of the connection
// when it is empty (or reading into p directly when p is as large).
func (b *h2Reader) Read(p []byte) (int, error) {
	if b.r == b.w {
		if len(p) >= h2ReadBuffer {
			return b.src.Read(p)
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	if b.r == b.w {
		b.release()
	}
	return n, nil
}

// wait blocks until the connection has bytes to read (or fails), without
// a buffer while it waits: it reads into peek, then into a borrowed
// buffer.
func (b *h2Reader) wait() error {
	if b.r < b.w {
		return nil
	}
	n, err := b.src.Read(b.peek[:])
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	b.borrow()
	b.r, b.w = 0, copy(b.buf[:], b.peek[:n])
	return nil
}

// Buffered is the number of bytes read from the connection and not yet
// from the buffer.
func (b *h2Reader) Buffered() int { return b.w - b.r }

// fill borrows a buffer and reads into it once; a read of nothing gives
// it back and returns the error (io.ErrNoProgress without one). An error
// that comes with bytes is left for the next read, which meets it again.
func (b *h2Reader) fill() error {
	b.borrow()
	n, err := b.src.Read(b.buf[:])
	if n == 0 {
		b.release()
		if err == nil {
			err = io.ErrNoProgress
		}
		return err
	}
	b.r, b.w = 0, n
	return nil
}

// borrow takes a buffer from the pool, unless b has one.
func (b *h2Reader) borrow() {
	if b.buf == nil {
		b.buf = h2ReadBuffers.Get().(*[h2ReadBuffer]byte)
		h2BuffersOut.Add(1)
	}
}

// release gives the buffer back.
func (b *h2Reader) release() {
	if b.buf != nil {
		h2ReadBuffers.Put(b.buf)
		b.buf = nil
		h2BuffersOut.Add(-1)
	}
	b.r, b.w = 0, 0
}
