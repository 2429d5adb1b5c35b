package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// circuits tracks, per instance address, connection failures in a row.
// After failures of them the instance's circuit opens for open: no request
// is sent to it (unless every instance of the route is open), then one is
// let through again (half-open) and a success closes it.
type circuits struct {
	failures int
	open     time.Duration
	m        sync.Map // addr → *circuit
}

type circuit struct {
	mu    sync.Mutex
	fails int
	// openUntil is when the circuit closes again, in Unix nanoseconds
	// (0: closed); read without the lock on every request.
	openUntil atomic.Int64
	// failing is set while fails > 0, so that success has nothing to do
	// in the common case.
	failing atomic.Bool
}

func (c *circuits) get(addr string) *circuit {
	if v, ok := c.m.Load(addr); ok {
		return v.(*circuit)
	}
	v, _ := c.m.LoadOrStore(addr, &circuit{})
	return v.(*circuit)
}

// isOpen reports whether requests to addr are held back now.
func (c *circuits) isOpen(addr string) bool {
	v, ok := c.m.Load(addr)
	if !ok {
		return false
	}
	until := v.(*circuit).openUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}

func (c *circuits) failure(addr string) {
	cb := c.get(addr)
	cb.mu.Lock()
	defer cb.mu.Unlock()
	cb.fails++
	cb.failing.Store(true)
	if cb.fails >= c.failures {
		cb.openUntil.Store(time.Now().Add(c.open).UnixNano())
	}
}

func (c *circuits) success(addr string) {
	v, ok := c.m.Load(addr)
	if !ok {
		return
	}
	cb := v.(*circuit)
	if !cb.failing.Load() {
		return
	}
	cb.mu.Lock()
	cb.fails = 0
	cb.failing.Store(false)
	cb.openUntil.Store(0)
	cb.mu.Unlock()
}
