//go:build linux

package proxy

// A loop's instance connections (loop_linux.go): their states, opening
// them without blocking, and the loop's pool of idle ones.

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lbackend is a connection to an instance on a loop.
type lbackend struct {
	l    *loop
	fd   int
	rd   fdReader
	addr string
	in   buffer
	// c is the client whose request it serves, nil when idle.
	c *lclient
	// pending is what is still to be written of the request.
	pending    []byte
	connecting bool
	readable   bool
	// reused is set once it served a request (see backend.reused).
	reused bool
	idleAt time.Time
}

func (b *lbackend) handle(ev uint32) {
	c := b.c
	if c == nil { // idle: the instance closed it, or sent what nobody asked for
		if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			b.l.dropIdle(b)
		}
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		b.readable = true
	}
	if b.connecting {
		if ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
			return
		}
		soerr, err := unix.GetsockoptInt(b.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && soerr != 0 {
			err = syscall.Errno(soerr)
		}
		if err != nil {
			b.l.sendFailed(c, fmt.Errorf("connecting to %s: %w", b.addr, err))
			return
		}
		b.connecting = false
		c.deadline = c.x.Start.Add(c.s.Proxy.cfg.ResponseHeaderTimeout)
		b.readable = false
		if !b.flush() {
			return
		}
	} else if len(b.pending) > 0 && ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !b.flush() {
		return
	}
	if b.readable {
		b.l.receive(c)
	}
}

// flush writes what is pending of the request; false when that failed
// (and the request went on elsewhere or failed).
func (b *lbackend) flush() bool {
	var err error
	if b.pending, err = writeFD(b.fd, b.pending); err != nil {
		b.l.sendFailed(b.c, b.stale(err))
		return false
	}
	return true
}

// stale marks err as a reused connection closed by the instance while
// idle (see errStale).
func (b *lbackend) stale(err error) error {
	if b.reused && len(b.in.buffered()) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		return errors.Join(errStale, err)
	}
	return err
}

// connect opens a connection to addr; it may still be connecting.
func (l *loop) connect(addr string) (*lbackend, error) {
	sa, family, err := l.sockaddr(addr)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	connecting := false
	switch err := unix.Connect(fd, sa); {
	case err == nil:
	case errors.Is(err, unix.EINPROGRESS):
		connecting = true
	default:
		_ = unix.Close(fd)
		return nil, fmt.Errorf("connecting to %s: %w", addr, err)
	}
	b := &lbackend{l: l, fd: fd, rd: fdReader{fd: fd}, addr: addr, in: buffer{b: make([]byte, backendBuffer)}, connecting: connecting}
	if err := l.register(fd, b); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("watching a connection to %s: %w", addr, err)
	}
	return b, nil
}

// sockaddr parses an instance address ("ip:port"), cached.
func (l *loop) sockaddr(addr string) (unix.Sockaddr, int, error) {
	if sa, ok := l.addrs[addr]; ok {
		if _, v4 := sa.(*unix.SockaddrInet4); v4 {
			return sa, unix.AF_INET, nil
		}
		return sa, unix.AF_INET6, nil
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("instance address %q: %w", addr, err)
	}
	if len(l.addrs) > 10000 { // instances come and go: forget them all now and then
		clear(l.addrs)
	}
	if a := ap.Addr().Unmap(); a.Is4() {
		sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
		l.addrs[addr] = sa
		return sa, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	l.addrs[addr] = sa
	return sa, unix.AF_INET6, nil
}

// getIdle returns an idle connection to addr, nil when there is none.
func (l *loop) getIdle(addr string) *lbackend {
	b, rest, ok := takeFresh(l.idle[addr], l.now, l.s.Proxy.cfg.IdleConnTimeout)
	if len(rest) == 0 {
		delete(l.idle, addr)
	} else {
		l.idle[addr] = rest
	}
	if !ok {
		return nil
	}
	return b
}

func (b *lbackend) idleSince() time.Time { return b.idleAt }
func (b *lbackend) close()               { b.l.release(b.fd) }

// putIdle keeps b for the next request to its address.
func (l *loop) putIdle(b *lbackend) {
	b.c, b.reused, b.idleAt, b.readable, b.pending = nil, true, l.now, false, nil
	b.in.r, b.in.w = 0, 0
	list := l.idle[b.addr]
	if len(list) >= perHostIdle {
		l.release(b.fd)
		return
	}
	l.idle[b.addr] = append(list, b)
}

// dropIdle closes an idle connection the instance closed.
func (l *loop) dropIdle(b *lbackend) {
	list := l.idle[b.addr]
	for i, x := range list {
		if x == b {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			list = list[:len(list)-1]
			break
		}
	}
	if len(list) == 0 {
		delete(l.idle, b.addr)
	} else {
		l.idle[b.addr] = list
	}
	l.release(b.fd)
}
