//go:build linux

package proxy

// The event loop: the fast path's driver for the common exchange, one
// loop per core (GOMAXPROCS) like an nginx worker. A loop waits on its
// own epoll set for the listener, its clients and its instance
// connections, and serves readiness in the order the kernel reports it.
// Goroutines woken by Go's network poller are run last-ready-first and,
// under load, only when the run queue drains; at saturation that widened
// the latency tail well past nginx's (docs/benchmarks.md).
//
// Like an nginx worker, a loop blocks in epoll_wait on its own thread,
// which the kernel wakes when its set has events (procs_linux.go):
// waiting in Go's poller instead, a loop's events were found by
// whichever thread polled first, often the one busy with the other loop,
// and served one loop after the other while the second core idled.
//
// A loop serves a request whose head and body it has whole, over a
// pooled instance connection, when the response's head and body fit in
// the connection's buffer. Anything else — a body still streaming in
// either direction, a chunked or close-delimited response, an upgrade,
// a request for net/http — it hands over, connection and all, to a
// goroutine (fast.go, forward.go), which serves that connection from
// then on (loopconn_linux.go).

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// loopSweep is how often a loop checks its connections' deadlines.
const loopSweep = 100 * time.Millisecond

// acceptBatch bounds the connections a loop accepts per wake: one, as an
// nginx worker without multi_accept. The listener, level-triggered,
// wakes a loop again (EPOLLEXCLUSIVE: one of them) while connections
// wait, so a burst of them — a client opening its pool — spreads over
// the loops rather than going to the first one woken (32 per wake put
// wrk's 64 connections 43 and 21 on two loops), and a flood of new
// connections does not starve the open ones.
const acceptBatch = 1

// handler is a connection a loop watches.
type handler interface {
	handle(events uint32)
}

// loop is one event loop.
type loop struct {
	s *Server
	// ep is the epoll set; lfd the loop's duplicate of the listener (-1
	// once closed); wake an eventfd Shutdown writes to.
	ep, lfd, wake int
	// fds are the watched connections by file descriptor, gens their
	// registration numbers (an event for a descriptor closed and reused
	// in the same wake is not the new one's).
	fds  []handler
	gens []int32
	gen  int32
	// clients counts the open client connections.
	clients int
	// idle are the pooled instance connections by address, the most
	// recently used last; addrs caches parsed addresses.
	idle  map[string][]*lbackend
	addrs map[string]unix.Sockaddr
	// now is the time of the last wake; swept of the last sweep.
	now, swept time.Time
	// acceptAt, when set, is when to watch the listener again after
	// running out of file descriptors.
	acceptAt time.Time
	draining bool
	events   []unix.EpollEvent
	// in are the TLS connections goroutines hand in (looptls_linux.go).
	in inbox
}

// startLoops serves ln with one event loop per core; false when ln is not
// a TCP listener (or the loops are off), for the goroutine per connection
// to serve it. With accept false, the loops do not watch ln: they serve
// the connections goroutines hand in (HTTPS, looptls_linux.go). done gets
// the first loop error (or nil) once every loop has returned.
func (s *Server) startLoops(ln net.Listener, accept bool) (done chan error, ok bool) {
	tl, isTCP := ln.(*net.TCPListener)
	if s.noLoop || !isTCP {
		return nil, false
	}
	n := loopCount()
	var fds []int
	var err error
	if accept {
		if fds, err = dupFDs(tl, n); err != nil {
			err = fmt.Errorf("duplicating the listener's descriptor: %w", err)
		}
	} else {
		fds = slices.Repeat([]int{-1}, n)
	}
	var loops []*loop
	held := 0
	if err == nil {
		held = len(fds)
		holdProcs(held) // procs_linux.go: given back as each loop returns
		for _, fd := range fds {
			l, lerr := newLoop(s, fd)
			if lerr != nil {
				err = lerr
				break
			}
			loops = append(loops, l)
		}
	}
	if err != nil {
		for _, l := range loops {
			l.closeAll()
		}
		for _, fd := range fds[min(len(loops)+1, len(fds)):] { // newLoop closed the one it failed with
			if fd >= 0 {
				_ = unix.Close(fd)
			}
		}
		releaseProcs(held)
		s.Log.Warn("event loop off: a goroutine per connection", "err", err)
		return nil, false
	}
	s.mu.Lock()
	if s.shutdown.Load() { // shut down before it served
		s.mu.Unlock()
		for _, l := range loops {
			l.closeAll()
		}
		releaseProcs(len(loops))
		return nil, false
	}
	s.loops = loops
	s.wg.Add(len(loops)) // under mu: Shutdown waits after it looked at the loops
	s.mu.Unlock()
	done = make(chan error, 1)
	errs := make(chan error, len(loops))
	for _, l := range loops {
		go func() {
			defer s.wg.Done()
			defer releaseProcs(1)
			errs <- l.run()
		}()
	}
	go func() {
		var first error
		for range loops {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		done <- first
	}()
	return done, true
}

// dupFDs returns n duplicates of c's descriptor (close-on-exec): one per
// loop of a listener, or a connection's for the loop it is handed in to.
func dupFDs(c syscall.Conn, n int) ([]int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("taking the descriptor: %w", err)
	}
	var fds []int
	if cerr := rc.Control(func(fd uintptr) {
		for range n {
			d, derr := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
			if derr != nil {
				err = derr
				return
			}
			fds = append(fds, d)
		}
	}); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
		return nil, fmt.Errorf("duplicating the descriptor: %w", err)
	}
	return fds, nil
}

// nudgeLoops wakes every loop to look at the shutdown flags.
func (s *Server) nudgeLoops() {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		l.nudge()
	}
}

// nudge wakes the loop (its eventfd) from any goroutine.
func (l *loop) nudge() {
	var one [8]byte
	one[0] = 1 // little-endian 1: an eventfd counter increment
	_, _ = unix.Write(l.wake, one[:])
}

// newLoop returns a loop accepting on lfd, which it owns (and closes on
// failure); none when lfd is -1.
func newLoop(s *Server, lfd int) (*loop, error) {
	closeLFD := func() {
		if lfd >= 0 {
			_ = unix.Close(lfd)
		}
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		closeLFD()
		return nil, fmt.Errorf("creating an epoll set: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(ep)
		closeLFD()
		return nil, fmt.Errorf("creating an eventfd: %w", err)
	}
	l := &loop{s: s, ep: ep, lfd: lfd, wake: wake, idle: map[string][]*lbackend{}, addrs: map[string]unix.Sockaddr{},
		events: make([]unix.EpollEvent, 256), now: time.Now()}
	l.swept = l.now
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		l.closeAll()
		return nil, fmt.Errorf("watching the eventfd: %w", err)
	}
	if lfd < 0 {
		return l, nil
	}
	if err := l.watchListener(); err != nil {
		l.closeAll()
		return nil, err
	}
	return l, nil
}

// watchListener adds the listener to the set; with several loops, one of
// them is woken per connection (EPOLLEXCLUSIVE).
func (l *loop) watchListener() error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(l.lfd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, l.lfd, &ev); err != nil {
		return fmt.Errorf("watching the listener: %w", err)
	}
	return nil
}

// run serves events until the loop is drained or forced to stop.
func (l *loop) run() error {
	defer l.closeAll()
	for {
		n, err := l.wait(l.swept.Add(loopSweep))
		if err != nil {
			return err
		}
		l.now = time.Now()
		for i := range n {
			ev := &l.events[i]
			fd := int(ev.Fd)
			switch {
			case fd == l.lfd:
				l.accept()
			case fd == l.wake:
				var b [8]byte
				_, _ = unix.Read(l.wake, b[:])
				if l.s.force.Load() {
					return nil
				}
				l.drain()
				l.takeIn()
			case fd < len(l.fds) && l.fds[fd] != nil && l.gens[fd] == ev.Pad:
				l.fds[fd].handle(ev.Events)
			}
		}
		if l.now.Sub(l.swept) >= loopSweep {
			l.sweep()
		}
		if l.draining && l.clients == 0 {
			return nil
		}
	}
}

// accept takes the connections waiting on the listener.
func (l *loop) accept() {
	for range acceptBatch {
		fd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.ECONNABORTED), errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			// The listener stays readable: stop watching it a while
			// rather than spin.
			l.s.Log.Warn("accepting a connection", "err", err)
			_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.lfd, nil)
			l.acceptAt = l.now.Add(100 * time.Millisecond)
			return
		default:
			l.s.Log.Warn("accepting a connection", "err", err)
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15)
		c := &lclient{exchange: l.s.newExchange(sockaddrString(sa)), l: l, fd: fd, rd: fdReader{fd: fd}, deadline: l.now.Add(l.s.IdleTimeout)}
		if err := l.register(fd, c); err != nil {
			l.s.Log.Warn("watching a connection", "err", err)
			_ = unix.Close(fd)
			continue
		}
		l.clients++
		if l.s.OnConn != nil {
			l.s.OnConn(1)
		}
	}
}

// sockaddrString is a peer address as net.Conn.RemoteAddr().String()
// has it.
func sockaddrString(sa unix.Sockaddr) string {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port)).String()
	}
	return ""
}

// register watches fd for h, edge-triggered.
func (l *loop) register(fd int, h handler) error {
	for fd >= len(l.fds) {
		l.fds = append(l.fds, nil)
		l.gens = append(l.gens, 0)
	}
	l.gen++
	l.fds[fd], l.gens[fd] = h, l.gen
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd), Pad: l.gen}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		l.fds[fd] = nil
		return err
	}
	return nil
}

// release stops watching fd and closes it.
func (l *loop) release(fd int) {
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, fd, nil)
	l.fds[fd] = nil
	_ = unix.Close(fd)
}

// detach stops watching fd and returns it as a net.Conn for a goroutine
// to serve (fd itself is closed: the net.Conn has a duplicate).
func (l *loop) detach(fd int) (net.Conn, error) {
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, fd, nil)
	l.fds[fd] = nil
	f := os.NewFile(uintptr(fd), "")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("handing a connection over: %w", err)
	}
	return c, nil
}

// drain stops accepting and closes the idle client connections; the
// others close after their response (Shutdown).
func (l *loop) drain() {
	if !l.s.shutdown.Load() || l.draining {
		return
	}
	l.draining = true
	if l.lfd >= 0 {
		_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, l.lfd, nil)
		_ = unix.Close(l.lfd)
		l.lfd = -1
	}
	for _, h := range l.fds {
		if c, ok := h.(*lclient); ok && c.state == waiting && len(c.in.buffered()) == 0 {
			if len(c.pending) > 0 {
				c.closeAfter = true
			} else {
				c.close()
			}
		}
	}
}

// sweep closes the connections past their deadlines: clients idle,
// sending a head too slowly or not reading their response; requests
// whose instance did not connect or answer in time; pooled instance
// connections idle too long.
func (l *loop) sweep() {
	l.swept = l.now
	if !l.acceptAt.IsZero() && l.now.After(l.acceptAt) && l.lfd >= 0 {
		l.acceptAt = time.Time{}
		if err := l.watchListener(); err != nil {
			l.s.Log.Warn("watching the listener again", "err", err)
		}
	}
	for _, h := range l.fds {
		c, ok := h.(*lclient)
		if !ok || !l.now.After(c.deadline) {
			continue
		}
		switch {
		case c.state == busy:
			l.sendFailed(c, os.ErrDeadlineExceeded)
		case len(c.pending) > 0:
			// Not reading its responses: reset, so that the kernel drops
			// what is unread rather than keep it while it trickles out.
			_ = unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			c.close()
		default:
			c.close()
		}
	}
	for addr, list := range l.idle {
		if keep := dropStale(list, l.now, l.s.Proxy.cfg.IdleConnTimeout); len(keep) == 0 {
			delete(l.idle, addr)
		} else {
			l.idle[addr] = keep
		}
	}
}

// closeAll closes every connection of the loop and the loop itself.
func (l *loop) closeAll() {
	l.closeIn()
	// Clients first: a client closes the instance connection of its
	// request; what is left are idle ones.
	for _, h := range l.fds {
		if c, ok := h.(*lclient); ok {
			c.close()
		}
	}
	for _, h := range l.fds {
		if b, ok := h.(*lbackend); ok {
			l.release(b.fd)
		}
	}
	clear(l.idle)
	if l.lfd >= 0 {
		_ = unix.Close(l.lfd)
		l.lfd = -1
	}
	_ = unix.Close(l.wake)
	_ = unix.Close(l.ep)
}
