//go:build linux

package proxy

// One exchange on an event loop (loop_linux.go): a client connection's
// states, the instance connection that serves its request, and the hand-
// over of both to a goroutine for what the loop does not do. The instance
// side is in loopbackend_linux.go.

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"time"

	"golang.org/x/sys/unix"

	"github.com/driftless/driftless/router/wire"
)

// clientState is where a loop's client connection is.
type clientState int

const (
	// waiting: for a request (none of its bytes, or part of its head).
	waiting clientState = iota
	// busy: its request is with an instance.
	busy
	closed
)

// errWouldBlock is a read that found nothing to read. It is a temporary
// net.Error, which crypto/tls does not keep as the connection's error
// (looptls_linux.go).
var errWouldBlock error = wouldBlock{}

type wouldBlock struct{}

func (wouldBlock) Error() string   { return "would block" }
func (wouldBlock) Timeout() bool   { return false }
func (wouldBlock) Temporary() bool { return true }

// fdReader reads a non-blocking descriptor, or the TLS connection over it
// when tc is set; drained is set when a read found it empty or emptied it
// (edge-triggered: the next bytes bring a new event). A TLS read can
// leave records in crypto/tls's buffer: it is drained only once a read
// would block.
type fdReader struct {
	fd      int
	tc      *tls.Conn
	drained bool
}

func (r *fdReader) Read(p []byte) (int, error) {
	if r.tc != nil {
		n, err := r.tc.Read(p)
		if n == 0 && errors.Is(err, errWouldBlock) {
			r.drained = true
		}
		return n, err
	}
	n, err := readFD(r.fd, p)
	switch {
	case err == nil:
		r.drained = n < len(p)
	case err == errWouldBlock:
		r.drained = true
	}
	return n, err
}

// readFD reads a non-blocking descriptor: errWouldBlock when it has
// nothing to read, io.EOF when its peer closed.
func readFD(fd int, p []byte) (int, error) {
	for {
		n, err := rawRead(fd, p)
		switch {
		case err == nil && n == 0 && len(p) > 0:
			return 0, io.EOF
		case err == nil:
			return n, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, errWouldBlock
		}
		return 0, err
	}
}

// writeFD writes b to a non-blocking descriptor until it is all written
// or the socket is full; rest is what is left (nil once all is written),
// err a failure other than a full socket.
func writeFD(fd int, b []byte) (rest []byte, err error) {
	for len(b) > 0 {
		n, err := rawWrite(fd, b)
		switch {
		case err == nil:
			b = b[n:]
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			return b, nil
		default:
			return b, err
		}
	}
	return nil, nil
}

// lclient is a client connection on a loop.
type lclient struct {
	exchange
	l  *loop
	fd int
	rd fdReader
	// readable is set by an input event and cleared once read dry.
	readable bool
	state    clientState
	// searched is how much of the buffered head was searched for its end.
	searched int
	// pending is what is still to be written to the client; closeAfter
	// closes the connection once it is.
	pending    []byte
	closeAfter bool
	// tc is the TLS connection over fd for HTTPS (looptls_linux.go), its
	// records sealed in sealed when the socket did not take them whole.
	tc     *tls.Conn
	sealed []byte
	// deadline is when the connection times out in its state.
	deadline time.Time
	// The request with an instance: its target (and attempts) and the
	// connection.
	t               target
	be              *lbackend
	isHead, closing bool
}

func (c *lclient) handle(ev uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readable = true
	}
	if len(c.pending) > 0 && ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !c.flush() {
		return
	}
	c.next()
}

// next serves the requests the client sent, as long as it is not busy
// with one and has nothing left to write.
func (c *lclient) next() {
	s := c.s
	for c.state == waiting && len(c.pending) == 0 {
		buf := c.in.buffered()
		if n := wire.HeadEnd(buf, c.searched); n >= 0 {
			c.searched = 0
			c.dispatch(n)
			continue
		}
		c.searched = len(buf)
		if c.searched >= s.MaxHeaderBytes {
			c.handOver(nil, 0) // net/http answers 431
			return
		}
		if c.searched == 0 && c.l.draining {
			c.close()
			return
		}
		if !c.readable {
			if c.searched == 0 {
				c.giveBack() // idle: nothing read, nothing to write
			}
			return
		}
		c.borrowIn()
		r := &c.rd
		r.drained = false
		err := c.in.fill(r, s.MaxHeaderBytes)
		if r.drained {
			c.readable = false
		}
		switch {
		case err == nil:
			if c.searched == 0 { // a head started: the read-header timeout runs
				c.deadline = c.l.now.Add(s.ReadHeaderTimeout)
			}
		case errors.Is(err, errWouldBlock):
		case errors.Is(err, errHeadTooLarge):
			c.handOver(nil, 0)
			return
		default:
			c.close()
			return
		}
	}
}

// dispatch starts the request whose head is the first n buffered bytes.
func (c *lclient) dispatch(n int) {
	pool, ok := c.parse(n)
	r := &c.req
	if !ok || r.ContentLength > int64(len(c.in.buffered())-n) {
		// For net/http, or a body still to come: a goroutine streams it.
		c.handOver(nil, 0)
		return
	}
	c.in.r += n
	c.start(pool)
	c.isHead, c.closing = string(r.Method) == http.MethodHead, r.Close
	t, ok := c.pick(pool)
	if !ok {
		c.fail(http.StatusBadGateway, noInstanceBody(pool.App))
		return
	}
	c.t = t
	c.borrowOut()
	c.out = c.requestHead(c.out[:0])
	c.out = append(c.out, c.in.buffered()[:r.ContentLength]...)
	c.in.r += int(r.ContentLength)
	c.state = busy
	c.l.send(c)
}

// write sends b (which stays c's until written) to the client.
func (c *lclient) write(b []byte) {
	if c.tc != nil { // sealed in records; what the socket does not take is pending
		if _, err := c.tc.Write(b); err != nil {
			c.close()
			return
		}
		c.wrote()
		return
	}
	c.pending = b
	c.flush()
}

// flush writes what is pending; false when the connection closed.
func (c *lclient) flush() bool {
	var err error
	if c.pending, err = writeFD(c.fd, c.pending); err != nil {
		c.close()
		return false
	}
	return c.wrote()
}

// wrote follows a write: the deadline while some is pending, the close
// after the last byte; false when the connection closed.
func (c *lclient) wrote() bool {
	if len(c.pending) > 0 {
		// A client that stops reading gets the idle timeout.
		c.deadline = c.l.now.Add(c.s.IdleTimeout)
		return true
	}
	if c.closeAfter {
		c.close()
		return false
	}
	return true
}

// fail answers the client with status and a plain text body, and closes
// the connection once it is written.
func (c *lclient) fail(status int, body string) {
	c.borrowOut()
	c.failure(status, body)
	c.closeAfter = true
	c.finish()
	c.write(c.out)
}

// finish ends the request: the instance it was counted on, the metrics
// and access log; the connection waits for the next one.
func (c *lclient) finish() {
	if c.t.pool != nil {
		c.t.end()
		c.t = target{}
	}
	c.observe()
	c.state = waiting
	c.deadline = c.l.now.Add(c.s.IdleTimeout)
}

// close closes the connection (and its request's instance connection:
// with a request half done, it cannot serve another).
func (c *lclient) close() {
	if c.state == closed {
		return
	}
	if c.be != nil {
		c.l.release(c.be.fd)
		c.be = nil
	}
	if c.state == busy {
		c.x.Status = 499
		c.finish()
	} else {
		c.giveBack() // a busy one's out may be its instance connection's
	}
	c.state = closed
	c.sealTLS()
	c.l.release(c.fd)
	c.l.clients--
	if c.s.OnConn != nil {
		c.s.OnConn(-1)
	}
}

// handOver gives the connection to a goroutine: with its unconsumed bytes
// (the current request's head among them) when b is nil, else in the
// middle of its request, with b holding a response head of n bytes.
func (c *lclient) handOver(b *lbackend, n int) {
	l := c.l
	nc, err := l.detach(c.fd)
	c.state = closed
	l.clients--
	if err != nil {
		l.s.Log.Warn("handing a connection over", "remote", c.remote, "err", err)
		if b != nil {
			l.release(b.fd)
			c.x.Status = http.StatusBadGateway
			c.t.end()
			c.observe()
		}
		if c.s.OnConn != nil {
			c.s.OnConn(-1)
		}
		return
	}
	cc := &conn{exchange: c.exchange, c: nc}
	if c.tc != nil { // the TLS connection goes on over nc
		sc := c.tc.NetConn().(*switchConn)
		sc.Conn, sc.lc = nc, nil
		cc.c = c.tc
	}
	cc.x.Info = &cc.info
	var resume func() bool
	if b != nil {
		bc, err := l.detach(b.fd)
		t := c.t
		t.info = &cc.info
		if err != nil {
			resume = func() bool {
				t.end()
				return cc.fail(http.StatusBadGateway, noInstanceBody(t.pool.App))
			}
		} else {
			be := &backend{c: bc, in: b.in, addr: b.addr, reused: b.reused}
			isHead, closing := c.isHead, c.closing
			// The instance answered before it took the whole request:
			// the rest is sent first (c.out, which it is in, is about to
			// hold the response head).
			rest := append([]byte(nil), b.pending...)
			resume = func() bool {
				if len(rest) > 0 {
					_, _ = be.c.Write(rest)
				}
				keep := cc.complete(be, n, isHead, closing, &t)
				t.end()
				cc.observe()
				cc.now = cc.x.End
				return keep
			}
		}
	}
	l.s.adopt(cc, resume)
}

// send sends c's request (in c.out) to its target, over an idle pooled
// connection unless it must be a new one.
func (l *loop) send(c *lclient) {
	addr := c.t.endpoint.Addr
	var b *lbackend
	if !c.t.fresh {
		b = l.getIdle(addr)
	}
	if b == nil {
		var err error
		if b, err = l.connect(addr); err != nil {
			l.sendFailed(c, err)
			return
		}
	}
	b.c, c.be = c, b
	b.pending = c.out
	if b.connecting {
		c.deadline = l.now.Add(l.s.Proxy.cfg.DialTimeout)
		return
	}
	c.deadline = c.x.Start.Add(l.s.Proxy.cfg.ResponseHeaderTimeout)
	b.flush()
}

// sendFailed sends c's request again, on a new connection or to another
// instance, or answers the client, as Proxy.retry decides (a loop's
// requests are whole: they can always be sent again).
func (l *loop) sendFailed(c *lclient, err error) {
	if c.be != nil {
		l.release(c.be.fd)
		c.be = nil
	}
	c.info.UpstreamTime = time.Since(c.x.Start)
	again, status, body := l.s.Proxy.retry(&c.t, err, true)
	if again {
		l.send(c)
		return
	}
	c.fail(status, body)
}

// receive reads c's response as it comes and answers the client once it
// has it whole (or hands the rest over).
func (l *loop) receive(c *lclient) {
	b := c.be
	for b.readable {
		r := &b.rd
		r.drained = false
		err := b.in.fill(r, maxResponseHead)
		if r.drained {
			b.readable = false
		}
		switch {
		case err == nil:
		case errors.Is(err, errWouldBlock):
			return
		case errors.Is(err, errHeadTooLarge):
			l.badResponse(c, err)
			return
		default:
			l.sendFailed(c, b.stale(err))
			return
		}
		if l.respond(c) {
			return
		}
	}
}

// badResponse answers 502 for an instance's response the proxy cannot
// pass on.
func (l *loop) badResponse(c *lclient, err error) {
	p := l.s.Proxy
	p.log.Warn("bad response from instance", "app", c.t.pool.App, "addr", c.t.endpoint.Addr, "err", err, "code", c.resp.Code)
	l.release(c.be.fd)
	c.be = nil
	c.fail(http.StatusBadGateway, badResponseBody(c.t.pool.App))
}

// respond answers the client when c's instance connection holds the whole
// response, or hands the exchange over when it will not; false while more
// is to come.
func (l *loop) respond(c *lclient) bool {
	b := c.be
	buf := b.in.buffered()
	n := wire.HeadEnd(buf, 0)
	if n < 0 {
		return false
	}
	resp := &c.resp
	if err := wire.ParseResponse(buf[:n], resp, maxResponseFields); err != nil || resp.Code == http.StatusSwitchingProtocols {
		l.badResponse(c, err)
		return true
	}
	c.info.UpstreamTime = time.Since(c.x.Start)
	var body int
	switch mode := c.mode(c.isHead); {
	case resp.Code < 200: // 1xx, then the final response: a goroutine passes both on
		c.handOver(b, n)
		return true
	case mode == bodyUnsupported:
		l.release(b.fd)
		c.be = nil
		c.fail(http.StatusBadGateway, unsupportedCodingBody(c.t.pool.App))
		return true
	case mode == bodyLength && int64(len(b.in.b)) >= int64(n)+resp.ContentLength:
		if int64(len(buf)-n) < resp.ContentLength {
			return false // the rest fits the buffer: wait for it
		}
		body = int(resp.ContentLength)
	case mode != bodyNone: // streamed: a goroutine copies it
		c.handOver(b, n)
		return true
	}
	l.s.Proxy.circuits.success(c.t.endpoint.Addr)
	closing := c.closing || c.s.shutdown.Load()
	c.out = c.responseHead(c.out[:0], &c.t, false, closing)
	c.out = append(c.out, buf[n:n+body]...)
	b.in.r += n + body
	c.x.Status, c.x.Bytes = resp.Code, int64(body)
	c.be = nil
	if !resp.Close && len(b.in.buffered()) == 0 && len(b.pending) == 0 {
		l.putIdle(b)
	} else {
		l.release(b.fd)
	}
	c.closeAfter = closing
	c.x.End = time.Now()
	c.finish()
	c.write(c.out)
	c.next()
	return true
}
