package proxy

import (
	"sync"
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
	mu        sync.Mutex
	fails     int
	openUntil time.Time
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
	cb := v.(*circuit)
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return time.Now().Before(cb.openUntil)
}

func (c *circuits) failure(addr string) {
	cb := c.get(addr)
	cb.mu.Lock()
	defer cb.mu.Unlock()
	cb.fails++
	if cb.fails >= c.failures {
		cb.openUntil = time.Now().Add(c.open)
	}
}

func (c *circuits) success(addr string) {
	v, ok := c.m.Load(addr)
	if !ok {
		return
	}
	cb := v.(*circuit)
	cb.mu.Lock()
	cb.fails, cb.openUntil = 0, time.Time{}
	cb.mu.Unlock()
}
