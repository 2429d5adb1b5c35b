package proxy

import (
	"context"
	"fmt"
	"net"
	"time"
)

// handedKeepAlive is the TCP keep-alive of a connection handed to the
// fallback server: probes after 30 s idle, as the pool's backend
// connections have.
var handedKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 30 * time.Second, Interval: 15 * time.Second, Count: 9}

// Listen is the listener Serve is meant for: the connections it accepts
// get no TCP keep-alive probes (nginx's default), which saves four
// setsockopt calls a connection; the fast path's idle and header
// timeouts end a silent client instead. A connection handed to the
// fallback server (an upgrade, a tunnel, HTTP/2 without FastH2) may
// stay open for hours without those timeouts: it gets keep-alive then.
// The event loops' own accept sets no keep-alive either.
//
// On Linux the listener also defers accepting a connection until its
// client has sent something (TCP_DEFER_ACCEPT, listen_linux.go): a new
// connection costs the router one wake-up, not two, and a client that
// connects and says nothing for a second or so is accepted then and ends
// as a silent one does, by the read-header timeout. Until then it is the
// kernel's: Shutdown does not see it.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := (&net.ListenConfig{KeepAlive: -1, Control: listenControl}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	return ln, nil
}

// keepAlive turns TCP keep-alive on for the socket under c.
func keepAlive(c net.Conn) {
	if tc := tcpSocket(c); tc != nil {
		_ = tc.SetKeepAliveConfig(handedKeepAlive)
	}
}

// tcpSocket is the TCP socket under c, through the wrappers the fast
// path puts around it (tls.Conn, switchConn, replayConn all have
// NetConn), or nil (a loop serves it, or it is not TCP).
func tcpSocket(c net.Conn) *net.TCPConn {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case interface{ NetConn() net.Conn }:
			if c = v.NetConn(); c == nil {
				return nil
			}
		default:
			return nil
		}
	}
}
