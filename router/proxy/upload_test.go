package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// headOnlyServer answers every request with answer as soon as its head
// has arrived and closes the connection without reading the body, as a
// server refusing an upload does.
func headOnlyServer(t *testing.T, answer string) string {
	return connServer(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			_, _ = io.WriteString(c, answer)
		}
	})
}

// upload sends a POST of size bytes to addr in pieces of 64 KiB, pause
// after each, until the router stops taking them; it returns the
// response and the connection.
func upload(t *testing.T, addr string, size int, pause time.Duration) (*http.Response, string, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: "+testHost+"\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		piece := []byte(strings.Repeat("x", 64<<10))
		for sent := 0; sent < size; sent += len(piece) {
			if _, err := c.Write(piece[:min(len(piece), size-sent)]); err != nil {
				return
			}
			time.Sleep(pause)
		}
	}()
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return resp, string(body), c
}

// Request bodies still arriving when the request is forwarded are
// streamed to the instance (by a connection's goroutine, whichever
// driver accepted it).
func TestStreamedUploads(t *testing.T) {
	forDrivers(t, func(t *testing.T, d driver) {
		t.Run("an answer before the whole body is the client's", func(t *testing.T) {
			inst := headOnlyServer(t, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 10\r\nConnection: close\r\n\r\ntoo large\n")
			addr, _ := serveFast(t, d, Config{}, inst)
			resp, body, c := upload(t, addr, 64<<20, 0)
			if resp.StatusCode != http.StatusRequestEntityTooLarge || body != "too large\n" {
				t.Fatalf("got %d %q; want the instance's 413", resp.StatusCode, body)
			}
			// The rest of the body is never read: the connection ends.
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			var ne net.Error
			if _, err := c.Read(make([]byte, 1)); err == nil || errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the connection carries on after an early answer (read: %v)", err)
			}
		})
		t.Run("a slow upload outlasts the response timeout", func(t *testing.T) {
			inst := rawBackend(t, func(req *http.Request) (string, bool) {
				return "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", false
			})
			// The body takes ~0.6 s to arrive; the instance answers at once
			// once it has it.
			addr, _ := serveFast(t, d, Config{ResponseHeaderTimeout: 300 * time.Millisecond}, inst)
			resp, body, _ := upload(t, addr, 4*64<<10, 200*time.Millisecond)
			if resp.StatusCode != http.StatusCreated || body != "ok" {
				t.Fatalf("got %d %q; want 201 (the response timeout runs once the request is sent)", resp.StatusCode, body)
			}
		})
	})
}
