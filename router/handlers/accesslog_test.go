package handlers

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the flusher and the test.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) state() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestBufferedLog(t *testing.T) {
	for _, tt := range []struct {
		name string
		// size and interval of the buffer; lines written; wait before
		// looking (without Close).
		size     int
		interval time.Duration
		lines    int
		wait     time.Duration
		// want: lines seen and at most writes to the file.
		wantLines, maxWrites int
	}{
		{"held until the interval", 1 << 16, time.Hour, 100, 10 * time.Millisecond, 0, 0},
		{"flushed by the interval", 1 << 16, 20 * time.Millisecond, 100, 500 * time.Millisecond, 100, 1},
		{"flushed when full", 64, time.Hour, 10, 10 * time.Millisecond, 7, 10},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out lockedBuffer
			b := NewBufferedLog(&out, tt.size, tt.interval)
			for range tt.lines {
				if _, err := b.Write([]byte("a line of the log\n")); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(tt.wait)
			got, writes := out.state()
			if n := strings.Count(got, "\n"); n < tt.wantLines || writes > tt.maxWrites {
				t.Errorf("%d lines in %d writes, want at least %d lines in at most %d writes", n, writes, tt.wantLines, tt.maxWrites)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if got, _ := out.state(); strings.Count(got, "\n") != tt.lines {
				t.Errorf("after Close: %d lines, want %d", strings.Count(got, "\n"), tt.lines)
			}
		})
	}
}
