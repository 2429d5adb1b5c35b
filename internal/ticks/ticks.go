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
	EveryOrWhen(ctx, interval, nil, f)
}

// EveryOrWhen calls f every interval and whenever kick receives, until
// ctx ends (a nil kick never receives).
func EveryOrWhen(ctx context.Context, interval time.Duration, kick <-chan struct{}, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		f()
	}
}

// NowAndEvery calls f at once, then as Every does.
func NowAndEvery(ctx context.Context, interval time.Duration, f func()) {
	f()
	Every(ctx, interval, f)
}
