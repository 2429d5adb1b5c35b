package network

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// ErrNoFreePort is returned by Allocate when every port of the range is
// taken.
var ErrNoFreePort = errors.New("no free host port")

// Ports hands out host ports from a range [min, max]. A port is allocated
// only if no other allocation holds it and nothing on the host listens on
// it. Allocation goes round the range, so a port just released is the last
// to be handed out again (routers may still have it in their tables). It is
// safe for concurrent use.
//
// Ports knows nothing of port mappings other agents made (they are
// iptables rules, not listening sockets): agents sharing a host need
// disjoint ranges.
type Ports struct {
	mu       sync.Mutex
	min, max int
	next     int
	used     map[int]bool
	// free reports whether nothing on the host listens on port.
	free func(port int) bool
}

// NewPorts returns an allocator for the ports min to max, both included.
// An invalid range (outside 1–65535, or min > max) makes every Allocate
// and Reserve fail.
func NewPorts(min, max int) *Ports {
	return &Ports{min: min, max: max, next: min, used: map[int]bool{}, free: listenFree}
}

func (p *Ports) validRange() bool {
	return p.min >= 1 && p.max <= 65535 && p.min <= p.max
}

// Allocate takes a free port from the range.
func (p *Ports) Allocate() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.validRange() {
		return 0, fmt.Errorf("allocating a host port: invalid range %d-%d", p.min, p.max)
	}
	size := p.max - p.min + 1
	for i := 0; i < size; i++ {
		port := p.next
		p.next++
		if p.next > p.max {
			p.next = p.min
		}
		if p.used[port] || !p.free(port) {
			continue
		}
		p.used[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("allocating a host port in %d-%d: %w", p.min, p.max, ErrNoFreePort)
}

// Reserve marks port as taken, e.g. by an instance adopted after a
// restart. It fails if port is outside the range or already taken.
func (p *Ports) Reserve(port int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.validRange() || port < p.min || port > p.max {
		return fmt.Errorf("reserving host port %d: outside the range %d-%d", port, p.min, p.max)
	}
	if p.used[port] {
		return fmt.Errorf("reserving host port %d: already taken", port)
	}
	p.used[port] = true
	return nil
}

// Release gives port back; releasing a port that is not taken does nothing.
func (p *Ports) Release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, port)
}

// InUse is how many ports are taken.
func (p *Ports) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// listenFree tries to listen on port on every address for a moment. A
// listener on any one address (HostIP included) makes this fail.
func listenFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
