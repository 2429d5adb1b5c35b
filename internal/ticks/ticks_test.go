package ticks

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestEvery(t *testing.T) {
	tests := []struct {
		name  string
		run   func(context.Context, time.Duration, func())
		first time.Duration // no call before this
	}{
		{"Every waits one interval", Every, 40 * time.Millisecond},
		{"NowAndEvery starts at once", NowAndEvery, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			var calls atomic.Int64
			firstAt := make(chan time.Duration, 1)
			start := time.Now()
			done := make(chan struct{})
			go func() {
				defer close(done)
				tt.run(ctx, 50*time.Millisecond, func() {
					if calls.Add(1) == 1 {
						firstAt <- time.Since(start)
					}
				})
			}()
			if d := <-firstAt; d < tt.first || d > tt.first+2*time.Second {
				t.Fatalf("first call after %s, want about %s", d, tt.first)
			}
			deadline := time.Now().Add(5 * time.Second)
			for calls.Load() < 3 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			<-done
			if n := calls.Load(); n < 3 {
				t.Fatalf("%d calls in 5 s at a 50 ms interval", n)
			}
			after := calls.Load()
			time.Sleep(150 * time.Millisecond)
			if calls.Load() != after {
				t.Fatal("called after the context ended")
			}
		})
	}
}

// TestEveryOrWhen: a kick calls f at once, well before the interval.
func TestEveryOrWhen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	kick := make(chan struct{}, 1)
	called := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		EveryOrWhen(ctx, time.Hour, kick, func() { called <- struct{}{} })
	}()
	kick <- struct{}{}
	select {
	case <-called:
	case <-time.After(5 * time.Second):
		t.Fatal("a kick did not call f")
	}
	cancel()
	<-done
}
