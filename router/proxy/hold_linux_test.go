//go:build linux

package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// writeLog keeps the writes made to the last connection its listener
// accepted.
type writeLog struct {
	net.Listener
	mu     sync.Mutex
	writes [][]byte
}

func (l *writeLog) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.writes = nil
	l.mu.Unlock()
	return &loggedConn{Conn: c, l: l}, nil
}

func (l *writeLog) last() [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.writes
}

type loggedConn struct {
	net.Conn
	l *writeLog
}

func (c *loggedConn) Write(p []byte) (int, error) {
	c.l.mu.Lock()
	c.l.writes = append(c.l.writes, append([]byte(nil), p...))
	c.l.mu.Unlock()
	return c.Conn.Write(p)
}

// tlsRecords counts the TLS records in b.
func tlsRecords(b []byte) int {
	n := 0
	for len(b) >= 5 {
		size := 5 + (int(b[3])<<8 | int(b[4]))
		if size > len(b) {
			break
		}
		b, n = b[size:], n+1
	}
	return n
}

// TestTLSLastResponseWithCloseNotify: the response to a request that
// closes its TLS connection goes out in one write with the close_notify
// alert after it (holdLast); a response of many records, written as it
// comes, is read whole and then a clean end too.
func TestTLSLastResponseWithCloseNotify(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{{"one record", 2}, {"many records", 40 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Repeat("x", tc.size)
			app := rawBackend(t, func(*http.Request) (string, bool) {
				return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body), false
			})
			cfg := testTLSConfig(t)
			wl := &writeLog{}
			entries := []route.Entry{{Route: testHost, Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "app-0", App: "app"}, Addr: app}}}
			addr, _ := startFastOn(t, drivers[1], entries, Config{}, func(ln net.Listener) net.Listener {
				wl.Listener = ln
				return wl
			}, func(s *Server) {
				s.TLSConfig = cfg
				s.Fallback.TLSConfig = cfg
			})
			c := dialTLS(t, addr, nil)
			if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", testHost); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c) // io.EOF after a close_notify only
			if err != nil {
				t.Fatalf("reading the response: %v (after %d bytes)", err, len(got))
			}
			if !strings.HasPrefix(string(got), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(got), "\r\n\r\n"+body) {
				t.Fatalf("response %.200q…", got)
			}
			var writes [][]byte
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				if writes = wl.last(); len(writes) >= 2 || time.Now().After(deadline) {
					break
				}
			}
			if tc.size > 1<<10 {
				return // many writes: the response whole and the close_notify are what counts
			}
			if len(writes) != 2 {
				t.Fatalf("%d writes, want 2: the handshake, then the response with the close_notify", len(writes))
			}
			if n := tlsRecords(writes[1]); n != 2 {
				t.Fatalf("the last write has %d TLS record(s), want 2: the response and the close_notify", n)
			}
		})
	}
}
