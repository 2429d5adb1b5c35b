package catalog

import (
	"testing"
	"time"
)

func TestNextIndex(t *testing.T) {
	tests := []struct {
		prev, next, want uint64
	}{
		{0, 5, 5}, {5, 5, 5}, {5, 9, 9}, {9, 5, 0}, {5, 0, 0},
	}
	for _, tt := range tests {
		if got := NextIndex(tt.prev, tt.next); got != tt.want {
			t.Errorf("NextIndex(%d, %d) = %d, want %d", tt.prev, tt.next, got, tt.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	var b Backoff
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	for _, w := range want {
		if got := b.Next(); got != w {
			t.Fatalf("Next = %s, want %s", got, w)
		}
	}
	for range 10 {
		b.Next()
	}
	if got := b.Next(); got != 10*time.Second {
		t.Fatalf("Next after many = %s, want the 10 s cap", got)
	}
	b.Reset()
	if got := b.Next(); got != 100*time.Millisecond {
		t.Fatalf("Next after Reset = %s", got)
	}
}
