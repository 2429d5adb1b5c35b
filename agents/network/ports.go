package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
)

// ErrNoFreePort is returned by Allocate when every port of the range is
// taken.
var ErrNoFreePort = errors.New("no free host port")

// Ports hands out host ports from a range [min, max], and holds each port
// it hands out with a listening socket on the host IP until it is
// released, as kube-proxy does for node ports: the instance's port mapping
// (a DNAT rule) takes the connections before the socket sees them, and
// the socket keeps every other program, other agents on the host
// included, from taking the port meanwhile.
//
// A port is handed out only if it is not taken here, no port mapping in
// the host's NAT table already uses it (one left by an agent that was
// killed, or made by another agent on the host) and it can be held.
// Allocation goes round the range, so a port just released is the last to
// be handed out again (routers may still have it in their tables). It is
// safe for concurrent use.
type Ports struct {
	mu       sync.Mutex
	min, max int
	next     int
	used     map[int]io.Closer // the hold of each port taken, nil if none
	// hold listens on port, or fails if something else has it.
	hold func(port int) (io.Closer, error)
	// mapped lists the host ports the NAT table maps already.
	mapped func(ctx context.Context) (map[int]bool, error)
}

// NewPorts returns an allocator for the ports min to max, both included,
// mapped on hostIP ("" for every address of the host). An invalid range
// (outside 1–65535, or min > max) makes every Allocate and Reserve fail.
func NewPorts(hostIP string, min, max int) *Ports {
	return &Ports{min: min, max: max, next: min, used: map[int]io.Closer{},
		hold: func(port int) (io.Closer, error) {
			return net.Listen("tcp", net.JoinHostPort(hostIP, strconv.Itoa(port)))
		},
		mapped: MappedPorts,
	}
}

func (p *Ports) validRange() bool {
	return p.min >= 1 && p.max <= 65535 && p.min <= p.max
}

// Allocate takes a free port from the range and holds it.
func (p *Ports) Allocate(ctx context.Context) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.validRange() {
		return 0, fmt.Errorf("allocating a host port: invalid range %d-%d", p.min, p.max)
	}
	mapped, err := p.mapped(ctx)
	if err != nil {
		return 0, fmt.Errorf("allocating a host port: %w", err)
	}
	size := p.max - p.min + 1
	for i := 0; i < size; i++ {
		port := p.next
		p.next++
		if p.next > p.max {
			p.next = p.min
		}
		if _, taken := p.used[port]; taken || mapped[port] {
			continue
		}
		h, err := p.hold(port)
		if err != nil {
			continue
		}
		p.used[port] = h
		return port, nil
	}
	return 0, fmt.Errorf("allocating a host port in %d-%d: %w", p.min, p.max, ErrNoFreePort)
}

// Reserve marks port as taken, e.g. by an instance adopted after a
// restart, and holds it if it can (the instance's own port mapping is
// already there). It fails if port is outside the range or already taken.
func (p *Ports) Reserve(port int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.validRange() || port < p.min || port > p.max {
		return fmt.Errorf("reserving host port %d: outside the range %d-%d", port, p.min, p.max)
	}
	if _, taken := p.used[port]; taken {
		return fmt.Errorf("reserving host port %d: already taken", port)
	}
	h, err := p.hold(port)
	if err != nil {
		h = nil
	}
	p.used[port] = h
	return nil
}

// Release gives port back and closes its hold; releasing a port that is
// not taken does nothing.
func (p *Ports) Release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h := p.used[port]; h != nil {
		_ = h.Close()
	}
	delete(p.used, port)
}

// InUse is how many ports are taken.
func (p *Ports) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// hostPortChain is where the portmap plugin's iptables backend jumps to
// each attachment's DNAT rules, matching on the host ports.
const hostPortChain = "CNI-HOSTPORT-DNAT"

// MappedPorts lists the host ports that the portmap plugin's rules in the
// host's NAT table map, whoever made them.
func MappedPorts(ctx context.Context) (map[int]bool, error) {
	// The whole table: listing a chain that does not exist yet is an
	// error whose text differs between iptables' backends.
	out, err := natTable(ctx, "-S")
	if err != nil {
		return nil, fmt.Errorf("listing host port mappings: %w", err)
	}
	return parseMappedPorts(out), nil
}

// parseMappedPorts reads the ports of `--dport P` and `--dports P,Q,R:S`
// in the rules of hostPortChain in iptables -S output.
func parseMappedPorts(rules string) map[int]bool {
	ports := map[int]bool{}
	for _, line := range strings.Split(rules, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || fields[0] != "-A" || fields[1] != hostPortChain {
			continue
		}
		for i := 2; i+1 < len(fields); i++ {
			if fields[i] != "--dport" && fields[i] != "--dports" {
				continue
			}
			for _, item := range strings.Split(fields[i+1], ",") {
				lo, hi, isRange := strings.Cut(item, ":")
				first, err := strconv.Atoi(lo)
				if err != nil {
					continue
				}
				last := first
				if isRange {
					if last, err = strconv.Atoi(hi); err != nil {
						continue
					}
				}
				for port := first; port <= last && port <= 65535; port++ {
					ports[port] = true
				}
			}
		}
	}
	return ports
}
