package catalog

import (
	"context"
	"errors"
	"log/slog"
	"time"

	consul "github.com/hashicorp/consul/api"
)

// Followers of Consul (the routers' registry and sleeping apps) run
// blocking queries in a loop (Follow): these are the loop's index and
// retry rules.

// Query is one blocking query of a Follow loop: it asks Consul with opts
// and takes the answer, returning the answer's meta, or an error (ErrStop
// to end the loop).
type Query func(opts *consul.QueryOptions) (*consul.QueryMeta, error)

// ErrStop, returned by a Query, ends its Follow loop.
var ErrStop = errors.New("stop following")

// Follow runs query in a loop until ctx ends or query returns ErrStop:
// each time as a blocking query of up to wait at the index of the last
// answer (NextIndex); after a failure, again from index 0 after a Backoff
// ("reading WHAT from Consul; retrying" logged); and saying when the ACLs
// hide part of an answer (Hidden, naming role's policy).
func Follow(ctx context.Context, log *slog.Logger, what string, role Role, wait time.Duration, query Query) {
	var index uint64
	var bo Backoff
	var hidden Hidden
	for ctx.Err() == nil {
		meta, err := query((&consul.QueryOptions{WaitIndex: index, WaitTime: wait}).WithContext(ctx))
		if errors.Is(err, ErrStop) {
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d := bo.Next()
			index = 0 // NextIndex: Consul may come back empty
			log.Warn("reading "+what+" from Consul; retrying", "err", err, "in", d)
			Pause(ctx, d)
			continue
		}
		bo.Reset()
		hidden.Check(log, meta, what, role)
		index = NextIndex(index, meta.LastIndex)
	}
}

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
