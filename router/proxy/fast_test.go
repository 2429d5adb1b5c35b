package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/handlers"
	"github.com/driftless/driftless/router/route"
)

const testHost = "app.apps.localhost"

// serveFast runs the fast path in front of the instances at addrs (one
// route, testHost) and returns its address.
func serveFast(t *testing.T, d driver, cfg Config, addrs ...string) (string, *Server) {
	t.Helper()
	return serveFastWith(t, d, cfg, addrs)
}

// serveFastWith is serveFast with tweaks to the server (see startFast).
func serveFastWith(t *testing.T, d driver, cfg Config, addrs []string, tweak ...func(*Server)) (string, *Server) {
	t.Helper()
	var entries []route.Entry
	for i, a := range addrs {
		entries = append(entries, route.Entry{Route: testHost, Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: fmt.Sprintf("app-%d", i), App: "app", Index: i}, Addr: a}})
	}
	return startFast(t, d, entries, cfg, tweak...)
}

// driver is how the fast path moves bytes: event loops, or a goroutine
// per connection (which also serves what a loop hands over).
type driver struct {
	name   string
	noLoop bool
}

var drivers = []driver{{"loop", false}, {"goroutines", true}}

// forDrivers runs test against each driver.
func forDrivers(t *testing.T, test func(t *testing.T, d driver)) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) { test(t, d) })
	}
}

// startFast runs the fast path (net/http behind it) with a table of
// entries on a loopback port until the test ends.
// tweak, when given, changes the server before it serves.
func startFast(tb testing.TB, d driver, entries []route.Entry, cfg Config, tweak ...func(*Server)) (string, *Server) {
	return startFastOn(tb, d, entries, cfg, nil, tweak...)
}

// startFastOn is startFast on the listener wrap makes of the loopback
// one (when wrap is set).
func startFastOn(tb testing.TB, d driver, entries []route.Entry, cfg Config, wrap func(net.Listener) net.Listener, tweak ...func(*Server)) (string, *Server) {
	var table route.Current
	table.Store(route.Build(entries))
	p := New(&table, cfg, nil)
	obs := handlers.NewObserver(handlers.Config{})
	s := &Server{Proxy: p, Observer: obs, Fallback: &http.Server{Handler: handlers.Wrap(p, obs)},
		MaxHeaderBytes: 32 << 10, MaxHeaders: 100, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute, noLoop: d.noLoop}
	for _, f := range tweak {
		f(s)
	}
	ln, err := Listen(context.Background(), "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if wrap != nil {
		ln = wrap(ln)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	if !d.noLoop {
		for deadline := time.Now().Add(2 * time.Second); !s.looping(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				tb.Fatal("no event loop serves the listener")
			}
		}
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
		p.Close()
	})
	return ln.Addr().String(), s
}

// rawBackend answers every request on a connection with respond's bytes
// (after reading the request head), and closes the connection when
// respond says so.
func rawBackend(t *testing.T, respond func(req *http.Request) (string, bool)) string {
	return rawServer(t, func(c net.Conn, req *http.Request) bool {
		out, closeAfter := respond(req)
		_, err := io.WriteString(c, out)
		return err == nil && !closeAfter
	})
}

// rawServer calls serve for every request on a connection (its body
// read), which writes the answer to c; false closes the connection.
func rawServer(t *testing.T, serve func(c net.Conn, req *http.Request) bool) string {
	return connServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if !serve(c, req) {
				return
			}
		}
	})
}

// connServer listens on loopback until the test ends and calls handle
// for every connection, closing it after.
func connServer(t *testing.T, handle func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// roundTrips sends raw request bytes on a new connection and reads n
// responses (to GET requests, or to methods[i] when given).
func roundTrips(t *testing.T, addr, raw string, n int, methods ...string) ([]*http.Response, []string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for i := range n {
		req := &http.Request{Method: http.MethodGet}
		if i < len(methods) {
			req.Method = methods[i]
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("reading response %d: %v", len(resps)+1, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("reading body %d: %v", len(resps)+1, err)
		}
		resps, bodies = append(resps, resp), append(bodies, string(body))
	}
	return resps, bodies
}

func TestFastPathFraming(t *testing.T) {
	forDrivers(t, func(t *testing.T, d driver) {
		big := strings.Repeat("0123456789abcdef", 1<<18) // 4 MiB
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/big":
				w.Header().Set("Content-Length", fmt.Sprint(len(big)))
				_, _ = io.WriteString(w, big)
			case "/chunked":
				for i := range 3 {
					fmt.Fprintf(w, "part %d;", i)
					w.(http.Flusher).Flush()
				}
			case "/hints":
				w.Header().Set("Link", "</a.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				_, _ = io.WriteString(w, "after hints")
			case "/nocontent":
				w.WriteHeader(http.StatusNoContent)
			case "/echo":
				b, _ := io.ReadAll(r.Body)
				fmt.Fprintf(w, "%s %s xff=%s xfh=%s xfp=%s id=%s", r.Method, b, r.Header.Get("X-Forwarded-For"),
					r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Request-Id"))
			default:
				_, _ = io.WriteString(w, "path "+r.URL.Path)
			}
		}))
		defer app.Close()
		addr, _ := serveFast(t, d, Config{}, app.Listener.Addr().String())
		h := "Host: " + testHost + "\r\n"

		t.Run("pipelined requests answered in order", func(t *testing.T) {
			_, bodies := roundTrips(t, addr, "GET /one HTTP/1.1\r\n"+h+"\r\nGET /two HTTP/1.1\r\n"+h+"\r\nPOST /echo HTTP/1.1\r\n"+h+"Content-Length: 3\r\n\r\nabc", 3)
			if bodies[0] != "path /one" || bodies[1] != "path /two" || !strings.HasPrefix(bodies[2], "POST abc ") {
				t.Fatalf("bodies %q", bodies)
			}
		})
		t.Run("large body intact", func(t *testing.T) {
			resps, bodies := roundTrips(t, addr, "GET /big HTTP/1.1\r\n"+h+"\r\nGET /one HTTP/1.1\r\n"+h+"\r\n", 2)
			if sha256.Sum256([]byte(bodies[0])) != sha256.Sum256([]byte(big)) || resps[0].ContentLength != int64(len(big)) || bodies[1] != "path /one" {
				t.Fatalf("big body of %d bytes (length %d), then %q", len(bodies[0]), resps[0].ContentLength, bodies[1])
			}
		})
		t.Run("chunked passed through", func(t *testing.T) {
			resps, bodies := roundTrips(t, addr, "GET /chunked HTTP/1.1\r\n"+h+"\r\nGET /one HTTP/1.1\r\n"+h+"\r\n", 2)
			if bodies[0] != "part 0;part 1;part 2;" || resps[0].TransferEncoding[0] != "chunked" || bodies[1] != "path /one" {
				t.Fatalf("%q %v then %q", bodies[0], resps[0].TransferEncoding, bodies[1])
			}
		})
		t.Run("HEAD and 204 have no body", func(t *testing.T) {
			resps, bodies := roundTrips(t, addr, "HEAD /big HTTP/1.1\r\n"+h+"\r\nGET /nocontent HTTP/1.1\r\n"+h+"\r\nGET /one HTTP/1.1\r\n"+h+"\r\n", 3, "HEAD")
			if resps[0].ContentLength != int64(len(big)) || bodies[0] != "" || resps[1].StatusCode != 204 || bodies[2] != "path /one" {
				t.Fatalf("HEAD length %d body %q; %d; %q", resps[0].ContentLength, bodies[0], resps[1].StatusCode, bodies[2])
			}
		})
		t.Run("early hints passed on", func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprint(c, "GET /hints HTTP/1.1\r\n"+h+"\r\n")
			br := bufio.NewReader(c)
			line, _ := br.ReadString('\n')
			if line != "HTTP/1.1 103 Early Hints\r\n" {
				t.Fatalf("first line %q", line)
			}
			for line != "\r\n" {
				line, _ = br.ReadString('\n')
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("final response %v, %v", resp, err)
			}
		})
		t.Run("forwarding headers and request id", func(t *testing.T) {
			resps, bodies := roundTrips(t, addr, "GET /echo HTTP/1.1\r\n"+h+"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Request-Id: abcdefgh-1234\r\n\r\n"+
				"GET /echo HTTP/1.1\r\n"+h+"X-Request-Id: bad id\r\n\r\n", 2)
			if want := "GET  xff=127.0.0.1 xfh=" + testHost + " xfp=http id=abcdefgh-1234"; bodies[0] != want || resps[0].Header.Get("X-Request-Id") != "abcdefgh-1234" {
				t.Fatalf("%q (X-Request-Id %q), want %q", bodies[0], resps[0].Header.Get("X-Request-Id"), want)
			}
			id := resps[1].Header.Get("X-Request-Id")
			if len(id) != 32 || !strings.HasSuffix(bodies[1], "id="+id) {
				t.Fatalf("generated id %q, app saw %q", id, bodies[1])
			}
		})
		t.Run("HTTP/1.0 handed to net/http", func(t *testing.T) {
			resps, bodies := roundTrips(t, addr, "GET /old HTTP/1.0\r\n"+h+"\r\n", 1)
			if resps[0].StatusCode != 200 || bodies[0] != "path /old" {
				t.Fatalf("%d %q", resps[0].StatusCode, bodies[0])
			}
		})
		t.Run("unknown host handed to net/http", func(t *testing.T) {
			resps, bodies := roundTrips(t, addr, "GET / HTTP/1.1\r\nHost: nowhere.localhost\r\n\r\n", 1)
			if resps[0].StatusCode != 404 || !strings.Contains(bodies[0], "no app is routed at nowhere.localhost") {
				t.Fatalf("%d %q", resps[0].StatusCode, bodies[0])
			}
		})
	})
}

// TestFastPathInstanceFailures: an instance that closes idle connections,
// one that answers after the response-header timeout, one that answers
// garbage, and one whose answer ends with its connection.
func TestFastPathInstanceFailures(t *testing.T) {
	forDrivers(t, func(t *testing.T, d driver) {
		t.Run("idle connections closed by the instance are retried", func(t *testing.T) {
			var conns atomic.Int64
			app := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
			app.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			app.Config.IdleTimeout = 20 * time.Millisecond
			app.Start()
			defer app.Close()
			addr, _ := serveFast(t, d, Config{}, app.Listener.Addr().String())
			for i := range 5 {
				resps, bodies := roundTrips(t, addr, "GET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n", 1)
				if resps[0].StatusCode != 200 || bodies[0] != "ok" {
					t.Fatalf("request %d: %d %q", i, resps[0].StatusCode, bodies[0])
				}
				time.Sleep(50 * time.Millisecond) // the instance closes the pooled connection
			}
			if conns.Load() < 5 {
				t.Fatalf("%d connections to the instance: the idle ones were not closed, the test proves nothing", conns.Load())
			}
		})
		t.Run("slow instance gets 504", func(t *testing.T) {
			app := rawBackend(t, func(*http.Request) (string, bool) {
				time.Sleep(400 * time.Millisecond)
				return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false
			})
			addr, _ := serveFast(t, d, Config{ResponseHeaderTimeout: 100 * time.Millisecond}, app)
			resps, bodies := roundTrips(t, addr, "GET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n", 1)
			if resps[0].StatusCode != 504 || !strings.Contains(bodies[0], "did not answer in time") {
				t.Fatalf("%d %q", resps[0].StatusCode, bodies[0])
			}
		})
		t.Run("garbage gets 502", func(t *testing.T) {
			app := rawBackend(t, func(*http.Request) (string, bool) { return "SSH-2.0-OpenSSH\r\n\r\n", true })
			addr, _ := serveFast(t, d, Config{}, app)
			resps, _ := roundTrips(t, addr, "GET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n", 1)
			if resps[0].StatusCode != 502 {
				t.Fatalf("%d", resps[0].StatusCode)
			}
		})
		t.Run("chunked wins over a length, which is not passed on", func(t *testing.T) {
			app := rawBackend(t, func(*http.Request) (string, bool) {
				return "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false
			})
			addr, _ := serveFast(t, d, Config{}, app)
			resps, bodies := roundTrips(t, addr, "GET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\nGET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n", 2)
			if bodies[0] != "hello" || bodies[1] != "hello" || resps[0].Header.Get("Content-Length") != "" {
				t.Fatalf("%q %q, Content-Length %q", bodies[0], bodies[1], resps[0].Header.Get("Content-Length"))
			}
		})
		t.Run("body until close", func(t *testing.T) {
			app := rawBackend(t, func(*http.Request) (string, bool) { return "HTTP/1.0 200 OK\r\n\r\nuntil the end", true })
			addr, _ := serveFast(t, d, Config{}, app)
			resps, bodies := roundTrips(t, addr, "GET / HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n", 1)
			if resps[0].StatusCode != 200 || bodies[0] != "until the end" || !resps[0].Close {
				t.Fatalf("%d %q close=%v", resps[0].StatusCode, bodies[0], resps[0].Close)
			}
		})
	})
}

// TestFastPathShutdown: a request in flight when the server shuts down
// is answered; idle connections are closed at once.
func TestFastPathShutdown(t *testing.T) {
	forDrivers(t, func(t *testing.T, d driver) {
		started := make(chan struct{})
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/idle" {
				_, _ = io.WriteString(w, "ok")
				return
			}
			close(started)
			time.Sleep(300 * time.Millisecond)
			_, _ = io.WriteString(w, "finished")
		}))
		defer app.Close()
		addr, s := serveFast(t, d, Config{}, app.Listener.Addr().String())
		idle, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		// Idle after a request (a listener with TCP_DEFER_ACCEPT leaves a
		// connection that has sent nothing to the kernel, unaccepted).
		if _, err := io.WriteString(idle, "GET /idle HTTP/1.1\r\nHost: "+testHost+"\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		idleReader := bufio.NewReader(idle)
		resp, err := http.ReadResponse(idleReader, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got := make(chan string, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
			req.Host = testHost
			resp, err := (&http.Client{}).Do(req)
			if err != nil {
				got <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			got <- fmt.Sprintf("%d %s close=%v", resp.StatusCode, b, resp.Close)
		}()
		<-started
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if g := <-got; g != "200 finished close=true" {
			t.Fatalf("in-flight request: %s", g)
		}
		_ = idle.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := idleReader.Read(make([]byte, 1)); n != 0 || err == nil || bytes.Contains([]byte(err.Error()), []byte("timeout")) {
			t.Fatalf("idle connection not closed: %d, %v", n, err)
		}
	})
}
