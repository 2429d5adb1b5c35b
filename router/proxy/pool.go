package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/router/wire"
)

// errHeadTooLarge is a head that does not fit its limit.
var errHeadTooLarge = errors.New("head too large")

// buffer is a connection's read buffer: bytes read and not consumed yet
// are b[r:w].
type buffer struct {
	b    []byte
	r, w int
}

func (b *buffer) buffered() []byte { return b.b[b.r:b.w] }

// fill reads more from c, making room first: consumed bytes are dropped
// and the buffer grows, up to limit, when it is full of unconsumed ones.
func (b *buffer) fill(c io.Reader, limit int) error {
	if b.r == b.w {
		b.r, b.w = 0, 0
	}
	if b.w == len(b.b) {
		switch {
		case b.r > 0:
			b.w = copy(b.b, b.b[b.r:b.w])
			b.r = 0
		case len(b.b) < limit:
			nb := make([]byte, min(2*len(b.b), limit))
			b.w = copy(nb, b.b[b.r:b.w])
			b.b, b.r = nb, 0
		default:
			return errHeadTooLarge
		}
	}
	n, err := c.Read(b.b[b.w:])
	b.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// head waits until the buffer holds a whole message head and returns its
// length (the head is b.buffered()[:n]; the caller consumes it).
// started, if set, is called when the first bytes of a head that did not
// come whole arrive (where the read-header timeout starts).
func (b *buffer) head(c io.Reader, limit int, started func()) (int, error) {
	searched := 0
	for {
		if n := wire.HeadEnd(b.buffered(), searched); n >= 0 {
			return n, nil
		}
		searched = b.w - b.r
		if searched >= limit {
			return 0, errHeadTooLarge
		}
		if searched > 0 && started != nil {
			started()
			started = nil
		}
		if err := b.fill(c, limit); err != nil {
			return 0, err
		}
	}
}

// backend is a connection to an instance and its read buffer.
type backend struct {
	c      net.Conn
	in     buffer
	addr   string
	idleAt time.Time
	// reused is set when the connection served a request before: a
	// failure before any response byte may then be the instance having
	// closed it while idle, and the request is worth sending again on a
	// new one.
	reused bool
	// partial is set when the instance answered before it took the whole
	// request body: the connection is out of step and never reused.
	partial bool
}

// perHostIdle bounds the idle connections kept per instance.
const perHostIdle = 1024

// backendBuffer is the initial read buffer of a backend connection; it
// grows to maxResponseHead for a large response head.
const (
	backendBuffer   = 8 << 10
	maxResponseHead = 64 << 10
)

// pool keeps idle keep-alive connections to instances, by address; the
// most recently used is reused first.
type pool struct {
	dialer  net.Dialer
	perHost int
	idle    time.Duration

	mu    sync.Mutex
	conns map[string][]*backend
	// stop ends the reaping.
	stop context.CancelFunc
}

func newPool(dial, idle time.Duration, perHost int) *pool {
	ctx, stop := context.WithCancel(context.Background())
	p := &pool{dialer: net.Dialer{Timeout: dial, KeepAlive: 30 * time.Second}, perHost: perHost, idle: idle,
		conns: map[string][]*backend{}, stop: stop}
	go ticks.Every(ctx, max(idle/2, time.Second), p.reap)
	return p
}

// get returns an idle connection to addr, nil when there is none (now is
// about now).
func (p *pool) get(addr string, now time.Time) *backend {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, rest, ok := takeFresh(p.conns[addr], now, p.idle)
	if len(rest) == 0 {
		delete(p.conns, addr)
	} else {
		p.conns[addr] = rest
	}
	if !ok {
		return nil
	}
	return b
}

// dial opens a new connection to addr.
func (p *pool) dial(addr string) (*backend, error) {
	c, err := p.dialer.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &backend{c: c, addr: addr, in: buffer{b: make([]byte, backendBuffer)}}, nil
}

// put gives a connection whose exchange is complete back to the pool (at
// about now).
func (p *pool) put(b *backend, now time.Time) {
	b.reused, b.idleAt = true, now
	b.in.r, b.in.w = 0, 0
	p.mu.Lock()
	list := p.conns[b.addr]
	if len(list) < p.perHost {
		p.conns[b.addr] = append(list, b)
		b = nil
	}
	p.mu.Unlock()
	if b != nil {
		_ = b.c.Close()
	}
}

// reap closes connections idle for longer than the idle timeout.
func (p *pool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, list := range p.conns {
		if keep := dropStale(list, time.Now(), p.idle); len(keep) == 0 {
			delete(p.conns, addr)
		} else {
			p.conns[addr] = keep
		}
	}
}

// close closes every idle connection and stops the reaping.
func (p *pool) close() {
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, list := range p.conns {
		for _, b := range list {
			_ = b.c.Close()
		}
		delete(p.conns, addr)
	}
}

// idler is a pooled connection: since when it is idle, and closing it.
type idler interface {
	idleSince() time.Time
	close()
}

func (b *backend) idleSince() time.Time { return b.idleAt }
func (b *backend) close()               { _ = b.c.Close() }

// takeFresh pops the most recently used connection of list that has
// been idle for less than max at now, closing the staler ones it finds
// on the way; ok is false when there is none. rest is what is left.
func takeFresh[B idler](list []B, now time.Time, max time.Duration) (b B, rest []B, ok bool) {
	var zero B
	for len(list) > 0 {
		b = list[len(list)-1]
		list[len(list)-1] = zero
		list = list[:len(list)-1]
		if now.Sub(b.idleSince()) < max {
			return b, list, true
		}
		b.close()
	}
	return zero, list, false
}

// dropStale closes the connections of list idle for max or longer at now
// and returns the others (in list's array).
func dropStale[B idler](list []B, now time.Time, max time.Duration) []B {
	keep := list[:0]
	for _, b := range list {
		if now.Sub(b.idleSince()) < max {
			keep = append(keep, b)
		} else {
			b.close()
		}
	}
	clear(list[len(keep):])
	return keep
}
