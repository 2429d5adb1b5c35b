package sim

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// RunAll runs every cell until ctx ends or one of them fails to start;
// a failure ends the others too. It returns the cells' errors joined.
func RunAll(ctx context.Context, cells []*Cell) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(cells))
	var wg sync.WaitGroup
	for i, c := range cells {
		wg.Go(func() {
			if errs[i] = c.Run(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Ports hands out the ports of hollow instances: fixed for every one when
// it is not 0 (all registered at one shared backend that answers, so that
// routed means served), else consecutive made-up ports from first,
// wrapping within [first, 65535].
func Ports(fixed, first int) func() int {
	if fixed != 0 {
		return func() int { return fixed }
	}
	first = min(max(first, 1024), 65535)
	var next atomic.Int64
	span := int64(65536 - first)
	return func() int { return first + int((next.Add(1)-1)%span) }
}
