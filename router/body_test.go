package router_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/router"
	"github.com/driftless/driftless/router/proxy"
)

// readResult is what the app read of a request body.
type readResult struct {
	path, body string
	err        error
}

// TestRequestBodies runs the router against a real Consul and a real
// app (net/http) on loopback: a malformed or cut request body gets 400
// and a stalled one 408 within the configured body timeout, and the app
// reads an error (its connection closed before the body's end), never a
// complete request; a slow but steady body arrives whole. Request ids:
// a client's good one is kept, a bad one replaced, on the fast path and
// on net/http.
func TestRequestBodies(t *testing.T) {
	reads := make(chan readResult, 16)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, r.Header.Get("X-Request-Id"))
			return
		}
		b, err := io.ReadAll(r.Body)
		reads <- readResult{r.URL.Path, string(b), err}
		if r.URL.RawQuery == "slow" { // an answer well after the body timeout
			time.Sleep(time.Second)
		}
		if err == nil {
			_, _ = io.WriteString(w, "got "+string(b))
		}
	}))
	defer app.Close()
	rtr, c := startWith(t, router.Config{Proxy: proxy.Config{BodyTimeout: 400 * time.Millisecond},
		TLSListen: "127.0.0.1:0", Certs: []router.CertFile{writeCert(t, t.TempDir(), "b", "b.apps.localhost")}})
	register(t, c, "b-0", "b", 0, app.Listener.Addr().String(), "b.apps.localhost")
	routed(t, "http://"+rtr.Addr(), "b.apps.localhost", 200)

	const (
		lengthHead  = "POST /%d HTTP/1.1\r\nHost: b.apps.localhost\r\nContent-Length: 20\r\n\r\n"
		chunkedHead = "POST /%d HTTP/1.1\r\nHost: b.apps.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
	)
	tests := []struct {
		name   string
		raw    []string // written with a pause of 150 ms between them
		cut    bool     // the client half-closes after them
		status int
		within time.Duration
		body   string // read by the app when status is 200
	}{
		{"length: cut", []string{lengthHead + "0123456789"}, true, 400, 3 * time.Second, ""},
		{"length: stalled", []string{lengthHead + "0123456789"}, false, 408, 2 * time.Second, ""},
		{"length: slow but steady", []string{lengthHead + "01234", "56789", "abcde", "fghij"}, false, 200, 5 * time.Second, "0123456789abcdefghij"},
		{"chunked: bad size line", []string{chunkedHead + "5\r\nhello\r\n", "zz\r\nworld\r\n0\r\n\r\n"}, false, 400, 3 * time.Second, ""},
		{"chunked: missing CRLF", []string{chunkedHead + "5\r\nhello", "XX0\r\n\r\n"}, false, 400, 3 * time.Second, ""},
		{"chunked: cut", []string{chunkedHead + "5\r\nhello\r\n"}, true, 400, 3 * time.Second, ""},
		{"chunked: stalled", []string{chunkedHead + "5\r\nhello\r\n"}, false, 408, 2 * time.Second, ""},
		{"length: a slow answer after a streamed body", []string{"POST /%d?slow HTTP/1.1\r\nHost: b.apps.localhost\r\nContent-Length: 10\r\n\r\nhello", "world"}, false, 200, 5 * time.Second, "helloworld"},
		{"net/http: a slow answer after the body", []string{"POST /%d?slow HTTP/1.0\r\nHost: b.apps.localhost\r\nContent-Length: 5\r\n\r\nhello"}, false, 200, 5 * time.Second, "hello"},
		{"chunked: a slow answer after the body", []string{"POST /%d?slow HTTP/1.1\r\nHost: b.apps.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}, false, 200, 5 * time.Second, "hello"},
		{"chunked: slow but steady", []string{chunkedHead + "5\r\nhello\r\n", "6\r\n world\r\n", "0\r\n\r\n"}, false, 200, 5 * time.Second, "hello world"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := fmt.Sprintf("/%d", i) // the app's reads of earlier cases are told apart
			tt.raw[0] = fmt.Sprintf(tt.raw[0], i)
			conn, err := net.Dial("tcp", rtr.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
			start := time.Now()
			go func() {
				for i, p := range tt.raw {
					if i > 0 {
						time.Sleep(150 * time.Millisecond)
					}
					if _, err := io.WriteString(conn, p); err != nil {
						return
					}
				}
				if tt.cut {
					_ = conn.(*net.TCPConn).CloseWrite()
				}
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v after %s", err, time.Since(start))
			}
			body, _ := io.ReadAll(resp.Body)
			if elapsed := time.Since(start); resp.StatusCode != tt.status || elapsed > tt.within {
				t.Fatalf("got %d %q after %s; want %d within %s", resp.StatusCode, body, elapsed, tt.status, tt.within)
			}
			for deadline := time.After(5 * time.Second); ; {
				var r readResult
				select {
				case r = <-reads:
				case <-deadline:
					t.Fatal("the app's read of the body did not end: its connection stays open")
				}
				if r.path != path {
					continue
				}
				if tt.status == http.StatusOK && (r.err != nil || r.body != tt.body) {
					t.Fatalf("the app read %q (%v); want %q", r.body, r.err, tt.body)
				}
				if tt.status != http.StatusOK && r.err == nil {
					t.Fatalf("the app read a complete request: %q", r.body)
				}
				break
			}
		})
	}

	t.Run("request ids", func(t *testing.T) {
		for _, proto := range []string{"HTTP/1.1", "HTTP/1.0"} { // the fast path, net/http
			for id, keep := range map[string]bool{"trace-0123456789": true, "abc": false, strings.Repeat("x", 200): false, "<img src=x>12345": false} {
				conn, err := net.Dial("tcp", rtr.Addr())
				if err != nil {
					t.Fatal(err)
				}
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				_, _ = io.WriteString(conn, "GET / "+proto+"\r\nHost: b.apps.localhost\r\nX-Request-Id: "+id+"\r\nConnection: close\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				seen, _ := io.ReadAll(resp.Body)
				conn.Close()
				back := resp.Header.Get("X-Request-Id")
				if string(seen) != back || keep != (back == id) || back == "" {
					t.Errorf("%s %.20q: the app saw %q, the client got %q (keep %v)", proto, id, seen, back, keep)
				}
			}
		}
	})

	t.Run("HTTP/2 over TLS", func(t *testing.T) {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "b.apps.localhost"}}}
		defer client.CloseIdleConnections()
		for _, tt := range []struct {
			name   string
			pieces []string
			stall  bool
			status int
		}{
			{"stalled", []string{"hello"}, true, 408},
			{"slow but steady", []string{"hello", " world"}, false, 200},
		} {
			t.Run(tt.name, func(t *testing.T) {
				pr, pw := io.Pipe()
				defer pw.Close()
				go func() {
					for i, p := range tt.pieces {
						if i > 0 {
							time.Sleep(150 * time.Millisecond)
						}
						if _, err := io.WriteString(pw, p); err != nil {
							return
						}
					}
					if !tt.stall {
						pw.Close()
					}
				}()
				path := "/h2-" + strings.ReplaceAll(tt.name, " ", "-")
				req, _ := http.NewRequest(http.MethodPost, "https://"+rtr.TLSAddr()+path, pr)
				req.Host = "b.apps.localhost"
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if elapsed := time.Since(start); resp.StatusCode != tt.status || resp.Proto != "HTTP/2.0" || elapsed > 3*time.Second {
					t.Fatalf("got %d %s %q after %s; want %d over HTTP/2", resp.StatusCode, resp.Proto, body, elapsed, tt.status)
				}
				for deadline := time.After(5 * time.Second); ; {
					var r readResult
					select {
					case r = <-reads:
					case <-deadline:
						t.Fatal("the app's read of the body did not end")
					}
					if r.path != path {
						continue
					}
					if (r.err == nil) != (tt.status == 200) {
						t.Fatalf("the app read %q (%v)", r.body, r.err)
					}
					break
				}
			})
		}
	})
}
