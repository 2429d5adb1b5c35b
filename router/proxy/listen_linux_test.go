//go:build linux

package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sockOpt reads an integer socket option of the TCP socket under c.
func sockOpt(t *testing.T, c net.Conn, level, opt int) int {
	t.Helper()
	tc := tcpSocket(c)
	if tc == nil {
		t.Fatalf("no TCP socket under %T", c)
	}
	return fdOpt(t, tc, level, opt)
}

// fdOpt reads an integer socket option of s's socket.
func fdOpt(t *testing.T, s syscall.Conn, level, opt int) int {
	t.Helper()
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestListenKeepAlive: Listen's connections have no keep-alive probes;
// keepAlive turns them on through each wrapper the fast path uses.
func TestListenKeepAlive(t *testing.T) {
	cfg := testTLSConfig(t)
	for _, tc := range []struct {
		name string
		wrap func(net.Conn) net.Conn
	}{
		{"tcp", func(c net.Conn) net.Conn { return c }},
		{"replayed", func(c net.Conn) net.Conn { return &replayConn{Conn: c} }},
		{"tls", func(c net.Conn) net.Conn { return tls.Server(wrapTLS(c), cfg) }},
		{"tls replayed", func(c net.Conn) net.Conn { return &replayConn{Conn: tls.Server(wrapTLS(c), cfg)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := Listen(context.Background(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			// A byte sent, so that TCP_DEFER_ACCEPT lets it be accepted now.
			if _, err := client.Write([]byte{0x16}); err != nil {
				t.Fatal(err)
			}
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if v := sockOpt(t, c, unix.SOL_SOCKET, unix.SO_KEEPALIVE); v != 0 {
				t.Fatalf("SO_KEEPALIVE = %d on an accepted connection, want 0", v)
			}
			w := tc.wrap(c)
			keepAlive(w)
			if v := sockOpt(t, c, unix.SOL_SOCKET, unix.SO_KEEPALIVE); v != 1 {
				t.Fatalf("SO_KEEPALIVE = %d after keepAlive, want 1", v)
			}
			if v := sockOpt(t, c, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); v != int(handedKeepAlive.Idle/time.Second) {
				t.Fatalf("TCP_KEEPIDLE = %d, want %v", v, handedKeepAlive.Idle)
			}
		})
	}
}

// TestHandOverKeepAlive: a connection the fast path hands to the
// fallback server (here for an Upgrade) has keep-alive probes on when
// the fallback gets it, over plain HTTP from a loop or a goroutine, and
// over TLS.
func TestHandOverKeepAlive(t *testing.T) {
	app := rawBackend(t, func(*http.Request) (string, bool) {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	})
	for _, tc := range []struct {
		name  string
		d     driver
		https bool
	}{{"loop", drivers[0], false}, {"goroutine", drivers[1], false}, {"tls", drivers[0], true}} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan int, 1)
			tweak := func(s *Server) {
				s.Fallback.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
					got <- sockOpt(t, c, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
					return ctx
				}
			}
			var c net.Conn
			if tc.https {
				addr, _ := startTLSLoop(t, app, tweak)
				c = dialTLS(t, addr, nil)
			} else {
				addr, _ := serveFastWith(t, tc.d, Config{}, []string{app}, tweak)
				raw, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { raw.Close() })
				c = raw
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", testHost); err != nil {
				t.Fatal(err)
			}
			select {
			case v := <-got:
				if v != 1 {
					t.Fatalf("SO_KEEPALIVE = %d on the handed-over connection, want 1", v)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the fallback server got no connection")
			}
			_, _ = bufio.NewReader(c).ReadString('\n')
		})
	}
}

// TestListenDeferAccept: Listen's socket has TCP_DEFER_ACCEPT, so a
// client that has connected but sent nothing is not accepted yet, and
// one that has sent its first bytes is, with them ready to read.
func TestListenDeferAccept(t *testing.T) {
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if v := fdOpt(t, ln.(*net.TCPListener), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT); v < deferAcceptSeconds {
		t.Fatalf("TCP_DEFER_ACCEPT = %d s, want at least %d", v, deferAcceptSeconds)
	}

	accepted := make(chan net.Conn, 2)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("a client that has sent nothing was accepted")
	case <-time.After(300 * time.Millisecond):
	}
	talker, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	if _, err := talker.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-accepted:
		defer c.Close()
		if c.RemoteAddr().String() != talker.LocalAddr().String() {
			t.Fatalf("accepted %s, want the client that spoke (%s)", c.RemoteAddr(), talker.LocalAddr())
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "GET / HTTP/1.1\r\n" {
			t.Fatalf("read %q, %v", line, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a client that sent its request head was not accepted")
	}
}
