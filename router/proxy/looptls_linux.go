//go:build linux

package proxy

// HTTPS on the event loops. A TLS connection's handshake, and its first
// request, are served by the connection's goroutine (fast.go, tls.go):
// the handshake is a conversation crypto/tls cannot resume after a read
// that would block, and a client that opens a connection per request is
// done after the first. When the connection then waits for its next
// request, the goroutine hands it in to a loop (handIn), which serves it
// from then on as a plain one, reading and writing through the same
// *tls.Conn: its records are decrypted and encrypted in place, and a
// read that would block returns a temporary error, which crypto/tls
// keeps resumable (the bytes of a partial record stay in its buffer).
//
// The *tls.Conn's transport is a switchConn, which is what lets it move:
// while a goroutine serves the connection, it is the net.Conn (Go's
// poller blocks); while a loop does, it is the loop's non-blocking
// descriptor, and what a write could not send waits in the client's
// pending bytes. A loop hands a TLS connection over to a goroutine as it
// does a plain one (loopconn_linux.go), switching the transport back.

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// switchConn is a TLS connection's transport (see above).
type switchConn struct {
	// Conn is the connection while a goroutine serves it; nil while a
	// loop does (lc set).
	net.Conn
	lc            *lclient
	local, remote net.Addr
	// held is the write a goroutine held back (holdLast), sent with the
	// next one; mu guards it from a Close by Shutdown.
	holding atomic.Bool
	mu      sync.Mutex
	held    []byte
}

// holdLast makes the goroutine serving TLS connection c hold back its
// next write (the last record of the response before it closes the
// connection) and send it with the write after it, the close_notify
// alert closing writes: one write and one segment where there were two.
// flushHeld, or Close, sends what is still held.
func holdLast(c net.Conn) {
	if sc := transport(c); sc != nil && sc.lc == nil {
		sc.holding.Store(true)
	}
}

// flushHeld sends what c's transport held back, and stops holding.
func flushHeld(c net.Conn) {
	if sc := transport(c); sc != nil && sc.lc == nil && sc.holding.Swap(false) {
		_ = sc.sendHeld()
	}
}

// transport is the switchConn under TLS connection c, or nil.
func transport(c net.Conn) *switchConn {
	sc, _ := netConn(c).(*switchConn)
	return sc
}

// sendHeld writes what was held back to the net.Conn.
func (s *switchConn) sendHeld() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) == 0 {
		return nil
	}
	_, err := s.Conn.Write(s.held)
	s.held = s.held[:0]
	return err
}

// wrapTLS is the transport a TLS connection accepted as c is built on.
func wrapTLS(c net.Conn) net.Conn {
	return &switchConn{Conn: c, local: c.LocalAddr(), remote: c.RemoteAddr()}
}

// NetConn is the net.Conn while a goroutine serves the connection; nil
// while a loop does.
func (s *switchConn) NetConn() net.Conn { return s.Conn }

// Read reads the loop's descriptor without blocking (errWouldBlock: a
// temporary net.Error), or the net.Conn.
func (s *switchConn) Read(p []byte) (int, error) {
	if s.lc == nil {
		return s.Conn.Read(p)
	}
	return readFD(s.lc.fd, p)
}

// Write writes to the loop's descriptor what the socket takes and keeps
// the rest in the client's pending bytes, or writes to the net.Conn.
func (s *switchConn) Write(p []byte) (int, error) {
	c := s.lc
	if c == nil {
		if !s.holding.Load() {
			return s.Conn.Write(p)
		}
		s.mu.Lock()
		first := len(s.held) == 0
		s.held = append(s.held, p...) // p is crypto/tls's buffer: copied
		s.mu.Unlock()
		if !first {
			s.holding.Store(false)
			if err := s.sendHeld(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	if len(c.pending) > 0 { // behind what waits: after it
		c.pending = append(c.pending, p...)
		return len(p), nil
	}
	rest, err := writeFD(c.fd, p)
	if err != nil {
		return len(p) - len(rest), err
	}
	if len(rest) > 0 { // p is crypto/tls's buffer: copied
		c.sealed = append(c.sealed[:0], rest...)
		c.pending = c.sealed
	}
	return len(p), nil
}

// Close sends what was held back and closes the net.Conn; on a loop,
// the loop closes the descriptor.
func (s *switchConn) Close() error {
	if s.lc == nil {
		if s.holding.Swap(false) {
			_ = s.sendHeld()
		}
		return s.Conn.Close()
	}
	return nil
}

// LocalAddr and RemoteAddr are the connection's, wherever it is served.
func (s *switchConn) LocalAddr() net.Addr  { return s.local }
func (s *switchConn) RemoteAddr() net.Addr { return s.remote }

// SetDeadline, SetReadDeadline and SetWriteDeadline set the net.Conn's
// deadlines; a loop keeps its own.
func (s *switchConn) SetDeadline(t time.Time) error {
	if s.lc == nil {
		return s.Conn.SetDeadline(t)
	}
	return nil
}

func (s *switchConn) SetReadDeadline(t time.Time) error {
	if s.lc == nil {
		return s.Conn.SetReadDeadline(t)
	}
	return nil
}

func (s *switchConn) SetWriteDeadline(t time.Time) error {
	if s.lc == nil {
		return s.Conn.SetWriteDeadline(t)
	}
	return nil
}

// SetLinger sets the net.Conn's SO_LINGER (forward.go resets a
// connection that way).
func (s *switchConn) SetLinger(sec int) error {
	if l, ok := s.Conn.(interface{ SetLinger(int) error }); ok && s.lc == nil {
		return l.SetLinger(sec)
	}
	return nil
}

// inbox is what goroutines hand in to a loop: the connections, until the
// loop returned (closed).
type inbox struct {
	mu     sync.Mutex
	conns  []*lclient
	closed bool
}

// handIn gives c, a TLS connection between requests, to a loop, which
// serves it from then on; false when c stays with its goroutine (not
// TLS, handed over by a loop, no loop, or its descriptor could not be
// taken).
func (s *Server) handIn(c *conn) bool {
	tc, ok := c.c.(*tls.Conn)
	if !ok || !c.loopable || c.h2 || s.shutdown.Load() {
		return false
	}
	sc, ok := tc.NetConn().(*switchConn)
	if !ok || sc.lc != nil {
		return false
	}
	l := s.nextLoop()
	if l == nil {
		return false
	}
	sys, ok := sc.Conn.(syscall.Conn)
	if !ok {
		return false
	}
	fds, err := dupFDs(sys, 1)
	if err != nil {
		return false
	}
	fd := fds[0]
	// The descriptor shares the socket's non-blocking flag with the one
	// Go's poller had; closing that one removes it from the poller.
	_ = sc.Conn.Close()
	lc := &lclient{exchange: c.exchange, l: l, fd: fd, tc: tc, readable: true}
	lc.x.Info = &lc.info
	lc.rd = fdReader{fd: fd, tc: tc}
	sc.Conn, sc.lc = nil, lc
	l.in.mu.Lock()
	if l.in.closed {
		l.in.mu.Unlock()
		s.closeClient(fd)
		return true // the loop has returned (shut down): the connection is closed
	}
	l.in.conns = append(l.in.conns, lc)
	l.in.mu.Unlock()
	l.nudge()
	return true
}

// nextLoop is the loop the next connection handed in goes to, in turn;
// nil when no loop runs.
func (s *Server) nextLoop() *loop {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.loops) == 0 {
		return nil
	}
	s.turn++
	return s.loops[s.turn%len(s.loops)]
}

// takeIn starts serving the connections handed in to the loop.
func (l *loop) takeIn() {
	l.in.mu.Lock()
	conns := l.in.conns
	l.in.conns = nil
	l.in.mu.Unlock()
	for _, c := range conns {
		c.deadline = l.now.Add(l.s.IdleTimeout)
		if err := l.register(c.fd, c); err != nil {
			l.s.Log.Warn("watching a connection", "err", err)
			l.s.closeClient(c.fd)
			continue
		}
		l.clients++
		c.next()
	}
}

// closeIn refuses connections from now on and closes those not taken.
func (l *loop) closeIn() {
	l.in.mu.Lock()
	conns := l.in.conns
	l.in.conns, l.in.closed = nil, true
	l.in.mu.Unlock()
	for _, c := range conns {
		l.s.closeClient(c.fd)
	}
}

// closeClient closes a client connection no loop serves yet, counted as
// closed (OnConn).
func (s *Server) closeClient(fd int) {
	_ = unix.Close(fd)
	if s.OnConn != nil {
		s.OnConn(-1)
	}
}

// sealTLS sends a TLS connection's close_notify, as far as the socket
// takes it, before the loop closes it.
func (c *lclient) sealTLS() {
	if c.tc != nil && len(c.pending) == 0 {
		_ = c.tc.CloseWrite()
	}
}
