package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// h2App is a real net/http instance for the HTTP/2 tests:
//
//	/echo      the request's forwarded fields and method, as text
//	/upload    the body's length and SHA-256
//	/download  ?n= bytes of a repeated pattern (Content-Length)
//	/stream    chunks flushed one by one, then a trailer
//	/slow      waits for the request's end (the proxy closing), noted in gone
//	/cut       a response cut short (the connection closed before its end)
//	/status    ?code= and no body
func h2App(t *testing.T, gone chan<- struct{}) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "method=%s host=%s proto=%s xff=%s xfh=%s xfp=%s id=%s cookie=%s te=%q cl=%d",
			r.Method, r.Host, r.Proto, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Host"),
			r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Request-Id"), r.Header.Get("Cookie"), r.TransferEncoding, r.ContentLength)
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d %x trailer=%s", n, h.Sum(nil), r.Trailer.Get("X-Sum"))
	})
	mux.HandleFunc("/download", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = w.Write(pattern(n))
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Done")
		for i := range 5 {
			fmt.Fprintf(w, "event %d\n", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Done", "yes")
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			gone <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	})
	mux.HandleFunc("/cut", func(w http.ResponseWriter, r *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly a part")
		c.Close()
	})
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
	})
	return serveApp(t, mux)
}

// serveApp serves h on a loopback port until the test ends and returns
// its address.
func serveApp(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// pattern is n bytes that are not all alike.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// h2Router is the fast path over TLS with FastH2 in front of app at
// testHost (and of a closed port at down.apps.localhost); handled counts
// the requests the Fallback's handler served.
func h2Router(t *testing.T, app string) (addr string, handled *atomic.Int32, conns *atomic.Int32, srv *Server) {
	t.Helper()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	entries := []route.Entry{
		{Route: testHost, Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "app-0", App: "app"}, Addr: app}},
		{Route: "down.apps.localhost", Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "down-0", App: "down"}, Addr: deadAddr}},
	}
	// An http2 route: its instance speaks only h2c, which the handler's
	// transport speaks to it.
	h2cLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2cSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "h2c proto=%s host=%s", r.Proto, r.Host)
	}), ReadHeaderTimeout: 5 * time.Second, Protocols: new(http.Protocols)}
	h2cSrv.Protocols.SetUnencryptedHTTP2(true)
	go func() { _ = h2cSrv.Serve(h2cLn) }()
	t.Cleanup(func() { _ = h2cSrv.Close() })
	entries = append(entries, route.Entry{Route: "grpc.apps.localhost",
		Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "grpc-0", App: "grpc"}, Addr: h2cLn.Addr().String(), HTTP2: true}})
	handled, conns = new(atomic.Int32), new(atomic.Int32)
	tc := testTLSConfig(t)
	addr, srv = startFast(t, driver{"goroutines", true}, entries, Config{}, func(s *Server) {
		s.TLSConfig, s.FastH2 = tc, true
		s.Fallback.TLSConfig = tc
		next := s.Fallback.Handler
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handled.Add(1)
			next.ServeHTTP(w, r)
		})
		s.OnConn = func(d int) {
			if d > 0 {
				conns.Add(1)
			}
		}
	})
	return addr, handled, conns, srv
}

// h2Client is Go's HTTP/2 client (net/http's), over TLS, HTTP/2 only.
func h2Client(t *testing.T) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: testHost, InsecureSkipVerify: true}, //nolint:gosec // test certificate
		ForceAttemptHTTP2: true, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// do sends a request to the router at addr for host and returns the
// response with its body read.
func do(t *testing.T, c *http.Client, addr, method, host, path string, body io.Reader, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s%s: %v", host, path, err)
	}
	return resp, string(b)
}

// TestH2FastPath: requests over HTTP/2 are forwarded on the fast path
// (the handler sees none of them) with what the net/http path gave them,
// and what the fast path does not route reaches the handler.
func TestH2FastPath(t *testing.T) {
	app := h2App(t, nil)
	addr, handled, _, _ := h2Router(t, app)
	c := h2Client(t)
	big := pattern(3<<20 + 17)
	sum := sha256.Sum256(big)
	for _, tt := range []struct {
		name, method, host, path string
		body                     func() io.Reader
		hdr                      []string
		status                   int
		want                     []string
		wantHandled              int32
	}{
		{name: "GET, forwarded fields", method: "GET", host: testHost, path: "/echo", status: 200,
			want: []string{"method=GET", "host=" + testHost, "proto=HTTP/1.1", "xff=127.0.0.1", "xfh=" + testHost, "xfp=https", "id=", "cl=0"}},
		{name: "a client's request id is kept", method: "GET", host: testHost, path: "/echo", hdr: []string{"X-Request-Id", "client-id-12345"},
			status: 200, want: []string{"id=client-id-12345"}},
		{name: "split cookies are joined", method: "GET", host: testHost, path: "/echo", hdr: []string{"Cookie", "a=1", "Cookie", "b=2"},
			status: 200, want: []string{"cookie=a=1; b=2"}},
		{name: "X-Forwarded-For of an untrusted client replaced", method: "GET", host: testHost, path: "/echo", hdr: []string{"X-Forwarded-For", "6.6.6.6"},
			status: 200, want: []string{"xff=127.0.0.1 "}},
		{name: "upload with a length", method: "POST", host: testHost, path: "/upload", body: func() io.Reader { return bytes.NewReader(big) },
			status: 200, want: []string{fmt.Sprintf("%d %x", len(big), sum)}},
		{name: "upload of unknown length (chunked to the instance)", method: "PUT", host: testHost, path: "/upload",
			body:   func() io.Reader { return io.MultiReader(bytes.NewReader(big[:1<<20]), bytes.NewReader(big[1<<20:])) },
			status: 200, want: []string{fmt.Sprintf("%d %x", len(big), sum)}},
		{name: "download", method: "GET", host: testHost, path: "/download?n=" + strconv.Itoa(len(big)), status: 200,
			want: []string{string(big)}},
		{name: "chunked response, streamed", method: "GET", host: testHost, path: "/stream", status: 200,
			want: []string{"event 0\nevent 1\nevent 2\nevent 3\nevent 4\n"}},
		{name: "HEAD", method: "HEAD", host: testHost, path: "/download?n=100", status: 200},
		{name: "204", method: "GET", host: testHost, path: "/status?code=204", status: 204},
		{name: "instance down", method: "GET", host: "down.apps.localhost", path: "/", status: 502,
			want: []string{"driftless: no healthy instance of down answered"}},
		{name: "http2 route: h2c to the instance, through the handler", method: "GET", host: "grpc.apps.localhost", path: "/", status: 200,
			want: []string{"h2c proto=HTTP/2.0 host=grpc.apps.localhost"}, wantHandled: 1},
		{name: "unknown host, through the handler", method: "GET", host: "nope.apps.localhost", path: "/x", status: 404,
			want: []string{"driftless: no app is routed at nope.apps.localhost/x"}, wantHandled: 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			handled.Store(0)
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
				if tt.method == "PUT" {
					body = io.NopCloser(body) // no length known to the client
				}
			}
			resp, got := do(t, c, addr, tt.method, tt.host, tt.path, body, tt.hdr...)
			if resp.ProtoMajor != 2 {
				t.Fatalf("answered over %s", resp.Proto)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %q", resp.StatusCode, tt.status, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("body %.300q lacks %.100q", got, w)
				}
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id in the response")
			}
			if tt.method == "HEAD" && (got != "" || resp.ContentLength != 100) {
				t.Errorf("HEAD: body %q, length %d", got, resp.ContentLength)
			}
			if n := handled.Load(); n != tt.wantHandled {
				t.Errorf("%d requests through the handler, want %d", n, tt.wantHandled)
			}
		})
	}
}

// TestH2Trailers: a chunked response's trailers reach the client, and
// the client's request trailers reach the instance.
func TestH2Trailers(t *testing.T) {
	addr, _, _, _ := h2Router(t, h2App(t, nil))
	c := h2Client(t)
	req, _ := http.NewRequest("GET", "https://"+addr+"/stream", nil)
	req.Host = testHost
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if got := resp.Trailer.Get("X-Done"); got != "yes" {
		t.Errorf("response trailer X-Done %q, want yes", got)
	}

	req, _ = http.NewRequest("POST", "https://"+addr+"/upload", io.NopCloser(strings.NewReader("payload")))
	req.Host = testHost
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Sum": nil}
	req.Body = &trailerBody{r: strings.NewReader("payload"), set: func() { req.Trailer.Set("X-Sum", "abc") }}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "7 ") || !strings.Contains(string(b), "trailer=abc") {
		t.Errorf("upload with a trailer: %q", b)
	}
}

// trailerBody sets the request's trailer at its end (as a client must).
type trailerBody struct {
	r   io.Reader
	set func()
}

func (b *trailerBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if errors.Is(err, io.EOF) {
		b.set()
	}
	return n, err
}

func (b *trailerBody) Close() error { return nil }

// TestH2ConcurrentStreams: many streams at once on one connection (fewer
// than the server's limit, 128: beyond it Go's client opens another
// connection, and with StrictMaxConcurrentStreams its reservations can
// wait on each other for good), each answered with its own response.
func TestH2ConcurrentStreams(t *testing.T) {
	addr, _, conns, _ := h2Router(t, h2App(t, nil))
	c := h2Client(t)
	do(t, c, addr, "GET", testHost, "/echo", nil) // the connection, before the burst
	const n = 120
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			size := 1000 + i*997
			req, _ := http.NewRequest("GET", "https://"+addr+"/download?n="+strconv.Itoa(size), nil)
			req.Host = testHost
			resp, err := c.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(b, pattern(size)) {
				errs <- fmt.Errorf("stream %d: %d bytes, err %v", i, len(b), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d connections, want 1", got)
	}
}

// TestH2StreamReset: a client that resets a stream ends the instance's
// request; the connection serves the next.
func TestH2StreamReset(t *testing.T) {
	gone := make(chan struct{}, 1)
	addr, _, conns, _ := h2Router(t, h2App(t, gone))
	c := h2Client(t)
	do(t, c, addr, "GET", testHost, "/echo", nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+addr+"/slow", nil)
	req.Host = testHost
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("the cancelled request succeeded")
	}
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the instance's request did not end with the reset")
	}
	if resp, _ := do(t, c, addr, "GET", testHost, "/echo", nil); resp.StatusCode != 200 {
		t.Fatalf("after the reset: %d", resp.StatusCode)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d connections, want 1", got)
	}
}

// TestH2Cleartext: on the plain listener, HTTP/2 with prior knowledge
// (h2c) is served on the fast path too, whichever driver took the
// connection first.
func TestH2Cleartext(t *testing.T) {
	app := h2App(t, nil)
	forDrivers(t, func(t *testing.T, d driver) {
		var handled atomic.Int32
		entries := []route.Entry{{Route: testHost, Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "app-0", App: "app"}, Addr: app}}}
		addr, _ := startFast(t, d, entries, Config{}, func(s *Server) {
			s.FastH2 = true
			next := s.Fallback.Handler
			s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handled.Add(1)
				next.ServeHTTP(w, r)
			})
		})
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		for _, path := range []string{"/echo", "/download?n=100000", "/echo"} {
			req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
			req.Host = testHost
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
				t.Fatalf("%s: %s %d %.100q", path, resp.Proto, resp.StatusCode, b)
			}
			if path == "/echo" && !strings.Contains(string(b), "xfp=http ") {
				t.Errorf("%s: %q, want X-Forwarded-Proto http", path, b)
			}
		}
		if n := handled.Load(); n != 0 {
			t.Errorf("%d requests through the handler, want 0", n)
		}
	})
}

// TestH2Failures: a response the instance cuts short resets its stream,
// a client that gives up an upload resets its own, a body sent to no
// route is answered; the connection serves on after each.
func TestH2Failures(t *testing.T) {
	addr, _, conns, _ := h2Router(t, h2App(t, nil))
	c := h2Client(t)
	do(t, c, addr, "GET", testHost, "/echo", nil)

	t.Run("response cut short", func(t *testing.T) {
		req, _ := http.NewRequest("GET", "https://"+addr+"/cut", nil)
		req.Host = testHost
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("read the whole of %q without an error", b)
		}
	})
	t.Run("upload given up", func(t *testing.T) {
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "POST", "https://"+addr+"/upload", pr)
		req.Host = testHost
		go func() {
			_, _ = pw.Write(pattern(100 << 10))
			cancel()
			pw.Close()
		}()
		if resp, err := c.Do(req); err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && strings.HasPrefix(string(b), strconv.Itoa(100<<10)+" ") {
				t.Fatalf("the instance got a whole body: %q", b)
			}
		}
	})
	t.Run("a body to no route", func(t *testing.T) {
		resp, got := do(t, c, addr, "POST", "nope.apps.localhost", "/", bytes.NewReader(pattern(1<<20)))
		if resp.StatusCode != 404 || !strings.Contains(got, "no app is routed") {
			t.Fatalf("%d %q", resp.StatusCode, got)
		}
	})
	if resp, got := do(t, c, addr, "GET", testHost, "/echo", nil); resp.StatusCode != 200 || !strings.Contains(got, "method=GET") {
		t.Fatalf("after the failures: %d %q", resp.StatusCode, got)
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("%d connections, want 1", got)
	}
}

// TestH2ExpectContinue: a client that waits for 100 (Continue) before
// its body gets it from the proxy at once.
func TestH2ExpectContinue(t *testing.T) {
	addr, handled, _, _ := h2Router(t, h2App(t, nil))
	c := h2Client(t)
	c.Transport.(*http.Transport).ExpectContinueTimeout = 10 * time.Second
	start := time.Now()
	resp, got := do(t, c, addr, "POST", testHost, "/upload", bytes.NewReader(pattern(1000)), "Expect", "100-continue")
	if resp.StatusCode != 200 || !strings.HasPrefix(got, "1000 ") || time.Since(start) > 5*time.Second {
		t.Fatalf("%d %q after %s", resp.StatusCode, got, time.Since(start))
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("%d requests through the handler, want 0", n)
	}
}
