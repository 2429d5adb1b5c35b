package proxy

// The HTTP/1.1 fast path: the router's plain listener. Event loops
// (loop_linux.go) serve the common exchange; a connection they hand over,
// or every connection where there are none, is served by a goroutine of
// its own that reads request heads in place (router/wire), forwards them
// over pooled instance connections and copies the responses back as they
// come, with no per-request goroutines, maps or header copies. What
// neither handles, it hands over with the bytes it has read to net/http
// (Server.Fallback), which serves the connection from then on through
// the same Proxy (reverse.go).

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/driftless/driftless/router/handlers"
)

// Server serves HTTP/1.1 on a listener through a Proxy.
type Server struct {
	// Proxy routes and forwards the requests.
	Proxy *Proxy
	// Observer records every request (metrics and access log).
	Observer *handlers.Observer
	// Fallback serves the connections the fast path hands over; its
	// Handler must be the Proxy wrapped in the handlers. Serve starts
	// it and Shutdown stops it.
	Fallback *http.Server
	// MaxHeaderBytes bounds a request head (request line included) and
	// MaxHeaders its fields; ReadHeaderTimeout bounds the wait for a head
	// once it started, IdleTimeout the wait for the next one.
	MaxHeaderBytes    int
	MaxHeaders        int
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// OnConn, if set, is called with +1 when a client connection opens
	// and -1 when it closes (handed-over ones included).
	OnConn func(delta int)
	// TLSConfig, when set, makes Serve serve HTTPS (tls.go): HTTP/1.1 on
	// the fast path, a goroutine per connection; HTTP/2 (its NextProtos
	// must offer h2 first) through Fallback, or on the fast path too with
	// FastH2 (h2.go).
	TLSConfig *tls.Config
	// FastH2 serves HTTP/2 on the fast path rather than through
	// net/http's HTTP/2 server: over TLS (ALPN h2) and, on a listener
	// without TLS, over cleartext with prior knowledge (h2c). An
	// HTTP/1.1 Upgrade to h2c still goes to net/http.
	FastH2 bool
	Log    *slog.Logger

	// noLoop serves every connection with a goroutine (tests of that
	// driver); loops are the event loops when they serve the listener.
	noLoop bool
	loops  []*loop
	// turn picks the loop the next TLS connection is handed in to.
	turn int
	// scheme is the X-Forwarded-Proto sent to instances: https with
	// TLSConfig.
	scheme []byte

	handoff  chanListener
	shutdown atomic.Bool
	// force stops the loops with requests in flight (Shutdown's context
	// ended).
	force atomic.Bool
	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup
	ln    net.Listener
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.ln, s.conns = ln, map[*conn]struct{}{}
	s.handoff = chanListener{addr: ln.Addr(), c: make(chan net.Conn), done: make(chan struct{})}
	s.mu.Unlock()
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.scheme = []byte("http")
	if s.TLSConfig != nil {
		s.scheme = []byte("https")
		s.fallbackTLS()
	}
	fallbackDone := make(chan error, 1)
	go func() { fallbackDone <- s.Fallback.Serve(&s.handoff) }()
	if s.TLSConfig == nil {
		if done, ok := s.startLoops(ln, true); ok {
			if err := <-done; err != nil {
				return err
			}
			return http.ErrServerClosed
		}
	} else {
		// A goroutine accepts and shakes hands; loops serve the
		// connections from their second request (looptls_linux.go).
		s.startLoops(ln, false)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return err
		}
		if s.TLSConfig != nil {
			c = tls.Server(wrapTLS(c), s.TLSConfig) // the handshake is the connection's goroutine's
		}
		cc := s.newConn(c)
		cc.loopable = s.TLSConfig != nil
		s.mu.Lock()
		if s.shutdown.Load() {
			s.mu.Unlock()
			_ = c.Close()
			continue
		}
		s.conns[cc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		if s.OnConn != nil {
			s.OnConn(1)
		}
		go cc.serve(nil)
	}
}

// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish until ctx ends (then closes their connections), and shuts
// the fallback server down.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	for c := range s.conns {
		if c.idle.Load() {
			_ = c.c.SetReadDeadline(time.Now()) // wakes it; it sees the shutdown
		}
	}
	s.mu.Unlock()
	s.nudgeLoops()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.force.Store(true)
		s.nudgeLoops()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.c.Close()
		}
		s.mu.Unlock()
	}
	if ferr := s.Fallback.Shutdown(ctx); err == nil && !errors.Is(ferr, http.ErrServerClosed) {
		err = ferr
	}
	return err
}

// conn is a client connection on the fast path served by its own
// goroutine.
type conn struct {
	exchange
	c net.Conn
	// idle is set while the connection waits for a request.
	idle     atomic.Bool
	deadline time.Time
	// now is when the last response was sent.
	now time.Time
	// unread is set when the connection ends with a request body the
	// client is still sending (its instance answered early).
	unread bool
	// h2 is set when the client chose HTTP/2 and the fast path serves it.
	h2 bool
	// h2c is the connection's HTTP/2 state once it serves HTTP/2
	// (guarded by s.mu).
	h2c *h2conn
	// loopable is set on a TLS connection that may be handed in to a
	// loop (one the listener's goroutine accepted: looptls_linux.go).
	loopable bool
}

func (s *Server) newConn(c net.Conn) *conn {
	return &conn{exchange: s.newExchange(c.RemoteAddr().String()), c: c}
}

// looping reports whether event loops serve the listener.
func (s *Server) looping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.loops) > 0
}

// adopt serves a connection a loop handed over with its own goroutine,
// after resume (the rest of the exchange in flight) when set.
func (s *Server) adopt(c *conn, resume func() bool) {
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.serve(resume)
}

// serve serves the connection's requests until it closes, after resume
// when set (false: the connection is done).
func (c *conn) serve(resume func() bool) {
	handedOver := false
	defer func() {
		if v := recover(); v != nil {
			c.s.Log.Error("panic serving a connection", "remote", c.remote, "panic", v)
		}
		if !handedOver {
			if c.unread {
				flushHeld(c.c)
				lingeringClose(c.c)
			}
			_ = c.c.Close()
			c.giveBack()
			if c.s.OnConn != nil {
				c.s.OnConn(-1)
			}
		}
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.s.wg.Done()
	}()
	if resume != nil && !resume() {
		return
	}
	if tc, ok := c.c.(*tls.Conn); ok {
		var fast bool
		if fast, handedOver = c.handshake(tc); !fast {
			return
		}
		if c.h2 {
			c.serveH2()
			return
		}
	}
	c.borrowIn() // until the connection ends or goes to a loop
	c.borrowOut()
	for served := false; !c.s.shutdown.Load(); served = true {
		if served && len(c.in.buffered()) == 0 && c.s.handIn(c) {
			handedOver = true // to a loop
			return
		}
		n, err := c.readHead()
		if err != nil {
			if errors.Is(err, errHeadTooLarge) {
				handedOver = c.handOver() // net/http answers 431
			}
			return
		}
		pool, ok := c.parse(n)
		if !ok {
			if c.s.FastH2 && c.s.TLSConfig == nil && bytes.HasPrefix([]byte(http2.ClientPreface), c.in.buffered()[:n]) {
				// HTTP/2 over cleartext with prior knowledge (h2c).
				c.c = &replayConn{Conn: c.c, pending: append([]byte(nil), c.in.buffered()...)}
				c.serveH2()
				return
			}
			handedOver = c.handOver()
			return
		}
		c.in.r += n
		if !c.proxy(pool) {
			return
		}
	}
}

// lingerTime and lingerBytes bound a lingering close.
const (
	lingerTime  = time.Second
	lingerBytes = 4 << 20
)

// lingeringClose ends the sending half of c and discards what the client
// still sends for a moment (as nginx's lingering_close does): closing a
// connection with unread bytes resets it, and a reset can destroy the
// response the client has not read yet.
func lingeringClose(c net.Conn) {
	hc, ok := c.(interface{ CloseWrite() error })
	if !ok || hc.CloseWrite() != nil {
		return
	}
	_ = c.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c, lingerBytes)
}

// readHead waits for the next request head: IdleTimeout for its first
// byte, ReadHeaderTimeout from there to its end.
func (c *conn) readHead() (int, error) {
	c.idle.Store(true)
	if c.s.shutdown.Load() {
		return 0, http.ErrServerClosed
	}
	// The idle deadline moves only when less than half of it is left: a
	// timer change per request is measurable on the fast path. (c.now is
	// when the last response was sent: a clock read less.)
	if c.deadline.Sub(c.now) < c.s.IdleTimeout/2 {
		if c.now.IsZero() {
			c.now = time.Now()
		}
		c.deadline = c.now.Add(c.s.IdleTimeout)
		_ = c.c.SetReadDeadline(c.deadline)
	}
	n, err := c.in.head(c.c, c.s.MaxHeaderBytes, func() {
		c.idle.Store(false)
		c.deadline = time.Now().Add(c.s.ReadHeaderTimeout)
		_ = c.c.SetReadDeadline(c.deadline)
	})
	c.idle.Store(false)
	return n, err
}

// handOver gives the connection, with the bytes of the current request,
// to the fallback server; false if it shut down.
func (c *conn) handOver() bool {
	_ = c.c.SetReadDeadline(time.Time{})
	pending := append([]byte(nil), c.in.buffered()...)
	return c.s.handoff.give(&replayConn{Conn: c.c, pending: pending})
}

// chanListener is the fallback server's listener: the connections the
// fast path hands over.
type chanListener struct {
	addr net.Addr
	c    chan net.Conn
	once sync.Once
	done chan struct{}
}

// give hands c to the fallback server, with TCP keep-alive on (Listen).
func (l *chanListener) give(c net.Conn) bool {
	keepAlive(c)
	select {
	case l.c <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.c:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// replayConn is a handed-over connection: it reads the bytes the fast
// path had read first.
type replayConn struct {
	net.Conn
	pending []byte
}

// NetConn is the connection under the replayed bytes.
func (r *replayConn) NetConn() net.Conn { return r.Conn }

func (r *replayConn) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	return r.Conn.Read(p)
}

// HandedOver reports whether c is a connection the fast path handed to
// net/http (its opening was counted by the fast path already).
func HandedOver(c net.Conn) bool {
	_, ok := c.(*replayConn)
	return ok
}
