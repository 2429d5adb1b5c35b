package handlers

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// BufferedLog is an access log written in batches, as nginx's
// access_log buffer= flush= does: a line per request is a write system
// call per request when the log is a file, a cost the router's fast path
// measures (docs/benchmarks.md); batched, lines reach the file when the
// buffer fills, every flush interval, and at Close.
type BufferedLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewBufferedLog writes to w through a buffer of size bytes, flushed at
// least every interval until Close.
func NewBufferedLog(w io.Writer, size int, interval time.Duration) *BufferedLog {
	b := &BufferedLog{w: bufio.NewWriterSize(w, size), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				_ = b.Flush()
			case <-b.stop:
				return
			}
		}
	}()
	return b
}

// Write adds p to the buffer (writing the buffer out when p does not
// fit).
func (b *BufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

// Flush writes out what the buffer holds.
func (b *BufferedLog) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Flush()
}

// Close stops the periodic flushes and writes out what is left; the
// underlying writer stays open.
func (b *BufferedLog) Close() error {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	return b.Flush()
}
