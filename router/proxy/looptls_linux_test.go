//go:build linux

package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// startTLSLoop runs the fast path with event loops over TLS in front of
// the instance at app, and returns its address and server.
func startTLSLoop(t *testing.T, app string, tweak ...func(*Server)) (string, *Server) {
	t.Helper()
	cfg := testTLSConfig(t)
	tweak = append([]func(*Server){func(s *Server) {
		s.TLSConfig = cfg
		s.Fallback.TLSConfig = cfg
	}}, tweak...)
	return serveFastWith(t, driver{"loop", false}, Config{}, []string{app}, tweak...)
}

// dialTLS opens an HTTP/1.1 TLS connection to addr over raw, when set,
// as the transport.
func dialTLS(t *testing.T, addr string, wrap func(net.Conn) net.Conn) *tls.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var c net.Conn = raw
	if wrap != nil {
		c = wrap(raw)
	}
	tc := tls.Client(c, &tls.Config{ServerName: testHost, InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // test certificate
	t.Cleanup(func() { tc.Close() })
	_ = tc.SetDeadline(time.Now().Add(20 * time.Second))
	return tc
}

// goroutineConns is how many client connections goroutines serve.
func goroutineConns(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// trickle writes every Write 7 bytes at a time, so that the server reads
// TLS records (and their 5-byte headers) in pieces.
type trickle struct{ net.Conn }

func (c trickle) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i += 7 {
		if _, err := c.Conn.Write(p[i:min(i+7, len(p))]); err != nil {
			return i, err
		}
		time.Sleep(time.Millisecond)
	}
	return len(p), nil
}

// TestLoopTLS: a TLS connection's goroutine hands it to a loop after its
// first request, and the loop serves it on: keep-alive, records that come
// in pieces, a client that reads late, a body the loop hands back to a
// goroutine, shutdown.
func TestLoopTLS(t *testing.T) {
	kb := strings.Repeat("x", 1000) // a response the loop answers itself
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %s %d %s", r.Method, r.URL.Path, r.Header.Get("X-Forwarded-Proto"), len(body), kb)
	}))
	defer app.Close()
	addr, s := startTLSLoop(t, app.Listener.Addr().String())
	h := "Host: " + testHost + "\r\n"
	get := func(t *testing.T, tc *tls.Conn, br *bufio.Reader, path string) {
		t.Helper()
		fmt.Fprintf(tc, "GET %s HTTP/1.1\r\n%s\r\n", path, h)
		expect(t, br, "GET "+path+" https 0 "+kb)
	}
	onLoop := func(t *testing.T) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); goroutineConns(s) != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d connections still with goroutines", goroutineConns(s))
			}
		}
	}

	t.Run("keep-alive on a loop", func(t *testing.T) {
		tc := dialTLS(t, addr, nil)
		br := bufio.NewReader(tc)
		get(t, tc, br, "/first")
		onLoop(t)
		for i := range 20 {
			get(t, tc, br, fmt.Sprintf("/%d", i))
		}
		onLoop(t)
	})
	t.Run("records in pieces", func(t *testing.T) {
		tc := dialTLS(t, addr, func(c net.Conn) net.Conn { return trickle{c} })
		br := bufio.NewReader(tc)
		get(t, tc, br, "/first")
		onLoop(t)
		get(t, tc, br, "/second")
		get(t, tc, br, "/third")
	})
	t.Run("a client reading late gets every response in order", func(t *testing.T) {
		tc := dialTLS(t, addr, nil)
		br := bufio.NewReader(tc)
		get(t, tc, br, "/first")
		onLoop(t)
		const n = 2000 // 2 MB of responses: more than the sockets hold
		sendLate(tc, n, h)
		for i := range n {
			expect(t, br, fmt.Sprintf("GET /%d https 0 %s", i, kb))
		}
	})
	t.Run("a streamed body goes to a goroutine, which keeps the connection", func(t *testing.T) {
		tc := dialTLS(t, addr, nil)
		br := bufio.NewReader(tc)
		get(t, tc, br, "/first")
		onLoop(t)
		fmt.Fprintf(tc, "POST /upload HTTP/1.1\r\n%sContent-Length: 10\r\n\r\nhello", h)
		time.Sleep(50 * time.Millisecond)
		_, _ = io.WriteString(tc, "world")
		expect(t, br, "POST /upload https 10 "+kb)
		get(t, tc, br, "/after")
		if n := goroutineConns(s); n != 1 {
			t.Fatalf("%d connections with goroutines, want 1", n)
		}
		get(t, tc, br, "/again")
	})
	t.Run("an idle connection times out on the loop", func(t *testing.T) {
		addr, _ := startTLSLoop(t, app.Listener.Addr().String(), func(s *Server) { s.IdleTimeout = 300 * time.Millisecond })
		tc := dialTLS(t, addr, nil)
		br := bufio.NewReader(tc)
		get(t, tc, br, "/first")
		get(t, tc, br, "/second") // on the loop
		start := time.Now()
		if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("idle connection: %d, %v; want EOF", n, err)
		}
		if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
			t.Errorf("closed after %v, want the idle timeout (300ms)", d)
		}
	})
	t.Run("shutdown closes a loop's idle TLS connection", func(t *testing.T) {
		tc := dialTLS(t, addr, nil)
		br := bufio.NewReader(tc)
		get(t, tc, br, "/first")
		onLoop(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := s.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("shutdown took %v", d)
		}
		_ = tc.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("idle connection: %d, %v; want its close_notify (EOF)", n, err)
		}
	})
}

// expect reads a response from br and fails unless its status is 200 and
// its body want.
func expect(t *testing.T, br *bufio.Reader, want string) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response to %.20q: %v", want, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("%d %.40q... (%v), want %.40q...", resp.StatusCode, body, err, want)
	}
}

// sendLate sends n GET requests (with the header lines h) on c without
// reading, and returns once the responses have had time to fill the
// sockets.
func sendLate(c io.Writer, n int, h string) {
	var reqs strings.Builder
	for i := range n {
		fmt.Fprintf(&reqs, "GET /%d HTTP/1.1\r\n%s\r\n", i, h)
	}
	go func() { _, _ = io.WriteString(c, reqs.String()) }()
	time.Sleep(300 * time.Millisecond)
}
