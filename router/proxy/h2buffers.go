package proxy

// The read and write buffers of an HTTP/2 connection on the fast path,
// each borrowed from a pool while it holds bytes: a connection waiting
// for its client's next frame holds neither (docs/benchmarks.md, run Q).

import (
	"bufio"
	"io"
	"sync"
	"sync/atomic"
)

// h2WriteBuffers are the connections' write buffers. A connection
// borrows one with its first write after a flush and gives it back with
// the next flush (x/net's HTTP/2 server does the same).
var h2WriteBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, h2WriteBuffer) }}

// h2BuffersOut counts the read and write buffers connections hold.
var h2BuffersOut atomic.Int64

// h2Buffer is a connection's write buffer, borrowed while it holds
// something (h.wmu held).
type h2Buffer struct {
	h  *h2conn
	bw *bufio.Writer
}

func (b *h2Buffer) Write(p []byte) (int, error) {
	if b.bw == nil {
		b.bw = h2WriteBuffers.Get().(*bufio.Writer)
		b.bw.Reset(h2Writer{b.h})
		h2BuffersOut.Add(1)
	}
	return b.bw.Write(p)
}

// Buffered is the number of bytes written and not flushed yet.
func (b *h2Buffer) Buffered() int {
	if b.bw == nil {
		return 0
	}
	return b.bw.Buffered()
}

// Flush sends what is buffered and gives the buffer back (emptied,
// whether or not the flush failed: a failed one ends the connection).
func (b *h2Buffer) Flush() error {
	if b.bw == nil {
		return nil
	}
	err := b.bw.Flush()
	b.discard()
	return err
}

// discard gives the buffer back with what it holds (a connection that
// ended).
func (b *h2Buffer) discard() {
	if b.bw == nil {
		return
	}
	b.bw.Reset(nil) // the pool holds no connection
	h2WriteBuffers.Put(b.bw)
	b.bw = nil
	h2BuffersOut.Add(-1)
}

// h2ReadBuffers are the connections' read buffers (h2ReadBuffer bytes)
// and, while a stream copies its request body to the instance, its copy
// buffer (streamBody).
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
	n, err := b.readOnce(b.peek[:])
	if n == 0 {
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
	n, err := b.readOnce(b.buf[:])
	if n == 0 {
		b.release()
		return err
	}
	b.r, b.w = 0, n
	return nil
}

// readOnce reads the connection once into p; a read of nothing without
// an error is io.ErrNoProgress.
func (b *h2Reader) readOnce(p []byte) (int, error) {
	n, err := b.src.Read(p)
	if n == 0 && err == nil {
		err = io.ErrNoProgress
	}
	return n, err
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
