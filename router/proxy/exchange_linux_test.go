//go:build linux

package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestExchangeBuffersGoBack: connections waiting for their clients' next
// request hold no exchange buffer, and connections that end give theirs
// back: the buffers go back once a response is written and nothing more
// was read, so a router makes about as many as it serves requests at
// once, not one pair per connection, idle or new.
func TestExchangeBuffersGoBack(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops what it is given at random: run without -race")
	}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "idle")
	}))
	defer app.Close()
	plain := func(t *testing.T) string {
		addr, _ := serveFastWith(t, driver{"loop", false}, Config{}, []string{app.Listener.Addr().String()})
		return addr
	}
	dialPlain := func(t *testing.T, addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	secure := func(t *testing.T) string {
		addr, _ := startTLSLoop(t, app.Listener.Addr().String())
		return addr
	}
	dialSecure := func(t *testing.T, addr string) net.Conn { return dialTLS(t, addr, nil) }
	const conns = 40
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) string
		dial  func(t *testing.T, addr string) net.Conn
		// requests are sent on each connection, the last with
		// Connection: close when closing.
		requests int
		closing  bool
	}{
		// An HTTPS connection's second request is the loop's, its first
		// its goroutine's.
		{"http idle on a loop", plain, dialPlain, 2, false},
		{"https idle on a loop", secure, dialSecure, 2, false},
		{"http closed by a loop", plain, dialPlain, 1, true},
		{"https closed by its goroutine", secure, dialSecure, 1, true},
		{"https closed by a loop", secure, dialSecure, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := tc.start(t)
			before := exchangeBuffersMade.Load()
			for range conns {
				c := tc.dial(t, addr)
				br := bufio.NewReader(c)
				for i := range tc.requests {
					closing := ""
					if tc.closing && i == tc.requests-1 {
						closing = "Connection: close\r\n"
					}
					fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n%s\r\n", testHost, closing)
					expect(t, br, "idle")
				}
				if tc.closing {
					if _, err := br.ReadByte(); err != io.EOF {
						t.Fatalf("the connection was not closed after its last response: %v", err)
					}
				}
			}
			// Held, they would be two a connection; given back, a few serve
			// every request (sync.Pool keeps one per core, and drops them
			// at a garbage collection).
			if made := exchangeBuffersMade.Load() - before; made >= conns/2 {
				t.Errorf("%d exchange buffers made for %d connections", made, conns)
			}
		})
	}
}
