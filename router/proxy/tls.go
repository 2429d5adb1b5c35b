package proxy

// HTTPS on the fast path. A TLS connection is accepted by the listener's
// goroutine and served first by a goroutine of its own (fast.go,
// forward.go) reading and writing through crypto/tls: the handshake
// (bounded by ReadHeaderTimeout), then HTTP/1.1 exactly as on the plain
// listener, with X-Forwarded-Proto https. Between its first and second
// request, that goroutine hands the connection in to an event loop,
// which serves it from then on (looptls_linux.go). A connection whose
// client chose HTTP/2 (ALPN h2) stays with its goroutine (h2.go, with
// FastH2) or goes to the fallback net/http server as it is, a
// *tls.Conn, which net/http serves with its HTTP/2 server; an HTTP/1.1
// request the fast path does not take goes there too, with the bytes
// read of it, and keeps its TLS state (fallbackTLS).

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// tlsStateKey is the context key of a handed-over TLS connection's
// state.
type tlsStateKey struct{}

// handshake runs c's TLS handshake and reports whether the connection
// carries HTTP/1.1 for the fast path; false when it failed (the
// connection is to be closed) or was handed to the fallback for HTTP/2
// (handedOver set).
func (c *conn) handshake(tc *tls.Conn) (fast, handedOver bool) {
	_ = tc.SetDeadline(time.Now().Add(c.s.ReadHeaderTimeout))
	if err := tc.Handshake(); err != nil {
		c.s.Log.Debug("TLS handshake failed", "remote", c.remote, "err", err)
		return false, false
	}
	_ = tc.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		if c.s.FastH2 {
			c.h2 = true
			return true, false
		}
		// net/http counts it from here (it is not a replayConn).
		if c.s.OnConn != nil {
			c.s.OnConn(-1)
		}
		if !c.s.handoff.give(tc) {
			if c.s.OnConn != nil {
				c.s.OnConn(1) // the deferred close counts it out
			}
			return false, false
		}
		return false, true
	}
	return true, false
}

// fallbackTLS makes the fallback server see the TLS state of the
// HTTP/1.1 connections handed over to it (a replayConn around a
// *tls.Conn, which net/http takes for plain TCP): Request.TLS is set,
// and X-Forwarded-Proto says https.
func (s *Server) fallbackTLS() {
	f := s.Fallback
	connContext := f.ConnContext
	f.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		if rc, ok := c.(*replayConn); ok {
			if tc, ok := rc.Conn.(*tls.Conn); ok {
				st := tc.ConnectionState()
				ctx = context.WithValue(ctx, tlsStateKey{}, &st)
			}
		}
		return ctx
	}
	next := f.Handler
	f.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, ok := r.Context().Value(tlsStateKey{}).(*tls.ConnectionState); ok && r.TLS == nil {
			r.TLS = st
		}
		next.ServeHTTP(w, r)
	})
}

// netConn is the TCP connection under c (c itself when it is not TLS).
func netConn(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}
