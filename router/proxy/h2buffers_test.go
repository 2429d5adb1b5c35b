package proxy

import (
	"errors"
	"io"
	"testing"
)

// scripted is a connection whose reads return its parts in turn, then
// err (io.EOF when nil).
type scripted struct {
	parts []string
	err   error
}

func (s *scripted) Read(p []byte) (int, error) {
	if len(s.parts) == 0 {
		if s.err == nil {
			return 0, io.EOF
		}
		return 0, s.err
	}
	n := copy(p, s.parts[0])
	if s.parts[0] = s.parts[0][n:]; s.parts[0] == "" {
		s.parts = s.parts[1:]
	}
	return n, nil
}

// TestH2Reader: reads come from the buffer, which is borrowed for what
// one read of the connection brought and given back once it is read; a
// read as large as the buffer goes to the connection; errors pass.
func TestH2Reader(t *testing.T) {
	for _, tc := range []struct {
		name  string
		src   *scripted
		wait  bool // wait before reading
		sizes []int
		want  []string
		err   error // the read after them
	}{
		{"pieces across fills", &scripted{parts: []string{"abc", "defgh"}}, false, []int{2, 2, 2, 2, 2}, []string{"ab", "c", "de", "fg", "h"}, io.EOF},
		{"wait then read", &scripted{parts: []string{"xyz"}}, true, []int{8}, []string{"xyz"}, io.EOF},
		{"a read as large as the buffer", &scripted{parts: []string{"large"}}, false, []int{h2ReadBuffer}, []string{"large"}, io.EOF},
		{"an error", &scripted{err: errors.New("reset")}, false, nil, nil, errors.New("reset")},
		{"nothing read, no error", &scripted{parts: []string{""}}, false, nil, nil, io.ErrNoProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := h2BuffersOut.Load()
			b := &h2Reader{src: tc.src}
			if tc.wait {
				if err := b.wait(); err != nil {
					t.Fatal(err)
				}
				if b.Buffered() != len(tc.want[0]) || b.buf == nil {
					t.Fatalf("after wait: %d buffered (buffer %v), want %d in a buffer", b.Buffered(), b.buf != nil, len(tc.want[0]))
				}
			}
			for i, size := range tc.sizes {
				p := make([]byte, size)
				n, err := b.Read(p)
				if err != nil || string(p[:n]) != tc.want[i] {
					t.Fatalf("read %d: %q, %v; want %q", i, p[:n], err, tc.want[i])
				}
			}
			if b.buf != nil || b.Buffered() != 0 {
				t.Errorf("%d bytes buffered, buffer held %v: want none once all is read", b.Buffered(), b.buf != nil)
			}
			if _, err := b.Read(make([]byte, 4)); err == nil || err.Error() != tc.err.Error() {
				t.Errorf("the last read's error = %v, want %v", err, tc.err)
			}
			if got := h2BuffersOut.Load(); got != out {
				t.Errorf("%d buffers out after, %d before", got, out)
			}
		})
	}
}
