// Package ticks runs a function on a fixed interval until a context ends:
// the loop behind every periodic task of the platform (heartbeats,
// registry syncs, garbage collection, check refreshes).
package ticks

import (
	"context"
	"time"
)

// Every calls f every interval, the first time one interval from now,
// until ctx ends.
func Every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f()
	}
}

// NowAndEvery calls f at once, then as Every does.
func NowAndEvery(ctx context.Context, interval time.Duration, f func()) {
	f()
	Every(ctx, interval, f)
}
