package catalog

import (
	"context"
	"time"
)

// Followers of Consul (the routers' registry and sleeping apps) run
// blocking queries in a loop: these are the loop's index and retry rules.

// NextIndex is the index of the next blocking query after one that
// answered next, following Consul's advice: start over when the index goes
// backwards or is zero. After a query that failed, start over too (index
// 0): Consul may be coming back empty (a dev agent restarted), its
// indexes starting again from 1, and a query at an index it has not
// reached yet would wait for its whole wait time (minutes) while the
// catalog changes below that index.
func NextIndex(prev, next uint64) uint64 {
	if next < prev || next == 0 {
		return 0
	}
	return next
}

// Backoff is the wait between failed queries: 100 ms, doubling to 10 s.
// Its zero value is ready.
type Backoff struct{ d time.Duration }

// Next is the wait before the next try.
func (b *Backoff) Next() time.Duration {
	if b.d == 0 {
		b.d = 100 * time.Millisecond
	} else if b.d *= 2; b.d > 10*time.Second {
		b.d = 10 * time.Second
	}
	return b.d
}

// Reset starts over after a query that answered.
func (b *Backoff) Reset() { b.d = 0 }

// Pause waits d, or until ctx ends.
func Pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
