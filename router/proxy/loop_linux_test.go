//go:build linux

package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// TestLoopExchanges: what the event loop does itself (and the goroutine
// driver as well): back-pressure from a client that reads late, a
// response whose body comes after its head, a refused instance retried
// elsewhere, many clients at once.
func TestLoopExchanges(t *testing.T) {
	kb := strings.Repeat("x", 4000)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.URL.Path, kb)
	}))
	defer app.Close()
	forDrivers(t, func(t *testing.T, d driver) {
		addr, _ := serveFast(t, d, Config{}, app.Listener.Addr().String())
		h := "Host: " + testHost + "\r\n"

		t.Run("a client reading late gets every response in order", func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			const n = 500 // 2 MB of responses: more than the sockets hold
			sendLate(c, n, h)
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for i := range n {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("response %d: %v", i, err)
				}
				body, err := io.ReadAll(resp.Body)
				if want := fmt.Sprintf("/%d %s", i, kb); err != nil || string(body) != want {
					t.Fatalf("response %d: %.20q..., %v", i, body, err)
				}
			}
		})
		t.Run("many clients at once", func(t *testing.T) {
			var wg sync.WaitGroup
			errs := make(chan error, 32)
			for g := range 32 {
				wg.Go(func() {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(20 * time.Second))
					br := bufio.NewReader(c)
					for i := range 50 {
						fmt.Fprintf(c, "GET /%d-%d HTTP/1.1\r\n%s\r\n", g, i, h)
						resp, err := http.ReadResponse(br, nil)
						if err != nil {
							errs <- err
							return
						}
						body, _ := io.ReadAll(resp.Body)
						if want := fmt.Sprintf("/%d-%d %s", g, i, kb); string(body) != want {
							errs <- fmt.Errorf("client %d request %d: %.20q...", g, i, body)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	})
}

// TestLoopInstances: instances that answer in pieces, refuse connections
// or let the client wait.
func TestLoopInstances(t *testing.T) {
	forDrivers(t, func(t *testing.T, d driver) {
		t.Run("body after the head", func(t *testing.T) {
			app := rawServer(t, func(c net.Conn, _ *http.Request) bool {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
				time.Sleep(50 * time.Millisecond)
				_, _ = io.WriteString(c, "he")
				time.Sleep(20 * time.Millisecond)
				_, err := io.WriteString(c, "llo")
				return err == nil
			})
			addr, _ := serveFast(t, d, Config{}, app)
			_, bodies := roundTrips(t, addr, "GET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\nGET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n", 2)
			if bodies[0] != "hello" || bodies[1] != "hello" {
				t.Fatalf("%q", bodies)
			}
		})
		t.Run("refused instance retried on another", func(t *testing.T) {
			dead, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			deadAddr := dead.Addr().String()
			dead.Close()
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "alive") }))
			defer app.Close()
			addr, _ := serveFast(t, d, Config{}, deadAddr, app.Listener.Addr().String())
			for i := range 6 {
				resps, bodies := roundTrips(t, addr, "GET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n", 1)
				if resps[0].StatusCode != 200 || bodies[0] != "alive" {
					t.Fatalf("request %d: %d %q", i, resps[0].StatusCode, bodies[0])
				}
			}
		})
		t.Run("no instance reachable gets 502", func(t *testing.T) {
			dead, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			deadAddr := dead.Addr().String()
			dead.Close()
			addr, _ := serveFast(t, d, Config{}, deadAddr)
			resps, bodies := roundTrips(t, addr, "GET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n", 1)
			if resps[0].StatusCode != 502 || !strings.Contains(bodies[0], "no healthy instance of app") || !resps[0].Close {
				t.Fatalf("%d %q close=%v", resps[0].StatusCode, bodies[0], resps[0].Close)
			}
		})
	})
}

// TestLoopTimeouts: a loop closes a client that stops reading its
// responses, one idle for the idle timeout and one sending its head too
// slowly; so does the goroutine a streamed response was handed to.
func TestLoopTimeouts(t *testing.T) {
	big := strings.Repeat("y", 7000)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			for range 2000 { // chunked: a goroutine's
				_, _ = io.WriteString(w, big)
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(big))) // the loop's
		_, _ = io.WriteString(w, big)
	}))
	defer app.Close()
	entries := []route.Entry{{Route: testHost, Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "app-0", App: "app"}, Addr: app.Listener.Addr().String()}}}
	addr, _ := startFast(t, drivers[0], entries, Config{}, func(s *Server) {
		s.IdleTimeout, s.ReadHeaderTimeout = 300*time.Millisecond, 300*time.Millisecond
	})
	h := "Host: " + testHost + "\r\n"
	closedWithin := func(t *testing.T, c net.Conn, d time.Duration) {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) { // reset: responses unread are dropped
			t.Fatalf("not closed in %v: %v", d, err)
		}
	}
	t.Run("a client that stops reading", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		var reqs strings.Builder
		for range 2000 { // 14 MB of responses: far more than the sockets hold
			fmt.Fprintf(&reqs, "GET / HTTP/1.1\r\n%s\r\n", h)
		}
		go func() { _, _ = io.WriteString(c, reqs.String()) }()
		time.Sleep(time.Second) // stalled past the idle timeout
		closedWithin(t, c, 5*time.Second)
	})
	t.Run("a client that stops reading a stream", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "GET /stream HTTP/1.1\r\n%s\r\n", h)
		time.Sleep(time.Second) // stalled past the idle timeout
		closedWithin(t, c, 5*time.Second)
	})
	t.Run("idle", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		closedWithin(t, c, 3*time.Second)
		if time.Since(start) < 250*time.Millisecond {
			t.Fatalf("closed after %v, before the idle timeout", time.Since(start))
		}
	})
	t.Run("slow head", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET / HTTP/1.1\r\n")
		go func() {
			for range 20 {
				time.Sleep(100 * time.Millisecond)
				if _, err := io.WriteString(c, "X-Slow: 1\r\n"); err != nil {
					return
				}
			}
		}()
		closedWithin(t, c, 3*time.Second)
	})
}
