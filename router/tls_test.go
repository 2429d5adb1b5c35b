package router_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/router"
)

// TestHTTPSFastPath serves HTTPS through the fast path (HTTP/1.1) and
// net/http (HTTP/2): every TLS version, keep-alive and resumed sessions
// reach the app with the router's headers and X-Forwarded-Proto https.
func TestHTTPSFastPath(t *testing.T) {
	dir := t.TempDir()
	cert := writeCert(t, dir, "one", "one.apps.localhost")
	app := backend(t, "one")
	rtr, c := startWith(t, router.Config{TLSListen: "127.0.0.1:0", Certs: []router.CertFile{cert}})
	register(t, c, "s-0", "one", 0, app.Listener.Addr().String(), "one.apps.localhost")
	routed(t, "http://"+rtr.Addr(), "one.apps.localhost", 200)
	base := "https://" + rtr.TLSAddr()

	for _, tt := range []struct {
		name    string
		version uint16
		h2      bool
		// resume: a new connection per request, the session resumed
		// from the second on; else one kept-alive connection.
		resume    bool
		wantProto string
	}{
		{"TLS 1.3 keep-alive", tls.VersionTLS13, false, false, "HTTP/1.1"},
		{"TLS 1.2 keep-alive", tls.VersionTLS12, false, false, "HTTP/1.1"},
		{"TLS 1.3 resumed", tls.VersionTLS13, false, true, "HTTP/1.1"},
		{"TLS 1.2 resumed", tls.VersionTLS12, false, true, "HTTP/1.1"},
		{"HTTP/2 over TLS 1.3", tls.VersionTLS13, true, false, "HTTP/2.0"},
		{"HTTP/2 over TLS 1.2", tls.VersionTLS12, true, false, "HTTP/2.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tc := &tls.Config{ServerName: "one.apps.localhost", InsecureSkipVerify: true, //nolint:gosec // test certificate
				MinVersion: tt.version, MaxVersion: tt.version, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: tt.h2, DisableKeepAlives: tt.resume}
			if !tt.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{} // HTTP/1.1 only
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			dials := 0
			for i := range 3 {
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
					if !info.Reused {
						dials++
					}
				}}
				req, _ := http.NewRequest(http.MethodGet, base+"/p", nil)
				req.Host = "one.apps.localhost"
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Proto != tt.wantProto || resp.TLS.Version != tt.version {
					t.Fatalf("request %d: %d %s TLS %x, want 200 %s TLS %x", i, resp.StatusCode, resp.Proto, resp.TLS.Version, tt.wantProto, tt.version)
				}
				for _, want := range []string{"host=one.apps.localhost", "xff=127.0.0.1", "proto=https", "xhost=one.apps.localhost", "path=/p"} {
					if !strings.Contains(string(body), want) {
						t.Errorf("request %d: app saw %q, want %s", i, body, want)
					}
				}
				if rid := resp.Header.Get("X-Request-Id"); rid == "" || !strings.Contains(string(body), "rid="+rid) {
					t.Errorf("request %d: request id %q, app saw %q", i, rid, body)
				}
				if tt.resume && i > 0 && !resp.TLS.DidResume {
					t.Errorf("request %d: session not resumed", i)
				}
			}
			if want := map[bool]int{true: 3, false: 1}[tt.resume]; dials != want {
				t.Errorf("%d connections for 3 requests, want %d", dials, want)
			}
		})
	}

	// What the fast path hands over to net/http (HTTP/1.0 here) keeps
	// its TLS: the app is told https.
	t.Run("handed over", func(t *testing.T) {
		conn, err := tls.Dial("tcp", rtr.TLSAddr(), &tls.Config{ServerName: "one.apps.localhost", InsecureSkipVerify: true}) //nolint:gosec // test certificate
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, "GET /old HTTP/1.0\r\nHost: one.apps.localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(body), "proto=https") || !strings.Contains(string(body), "path=/old") {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
	})
}

// TestHTTPSRefusals: clients that cannot or do not complete a TLS
// handshake get no HTTP exchange, and the router serves on.
func TestHTTPSRefusals(t *testing.T) {
	dir := t.TempDir()
	cert := writeCert(t, dir, "one", "one.apps.localhost")
	app := backend(t, "one")
	rtr, c := startWith(t, router.Config{TLSListen: "127.0.0.1:0", Certs: []router.CertFile{cert}, ReadHeaderTimeout: 500 * time.Millisecond})
	register(t, c, "r-0", "one", 0, app.Listener.Addr().String(), "one.apps.localhost")
	routed(t, "http://"+rtr.Addr(), "one.apps.localhost", 200)

	for _, tt := range []struct {
		name string
		// talk does what the client does on a new connection and
		// returns what it read back, or the error it got.
		talk func(c net.Conn) ([]byte, error)
	}{
		{"TLS 1.1 only", func(c net.Conn) ([]byte, error) {
			tc := tls.Client(c, &tls.Config{ServerName: "one.apps.localhost", InsecureSkipVerify: true, //nolint:gosec // the refusal is the test
				MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
			return nil, tc.Handshake()
		}},
		{"plain HTTP on the TLS port", func(c net.Conn) ([]byte, error) {
			if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: one.apps.localhost\r\n\r\n"); err != nil {
				return nil, err
			}
			return io.ReadAll(c)
		}},
		{"silent client", func(c net.Conn) ([]byte, error) { return io.ReadAll(c) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", rtr.TLSAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			got, err := tt.talk(conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the router kept the connection open (no handshake deadline)")
			}
			if strings.Contains(string(got), "HTTP/1.1 200") || (err == nil && tt.name == "TLS 1.1 only") {
				t.Fatalf("served: %q, %v", got, err)
			}
		})
	}
	// Still serving.
	testenv.Eventually(t, 5*time.Second, 50*time.Millisecond, "served after the refusals", func() error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "one.apps.localhost", InsecureSkipVerify: true}} //nolint:gosec // test certificate
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "https://"+rtr.TLSAddr()+"/", nil)
		req.Host = "one.apps.localhost"
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return errors.New(resp.Status)
		}
		return nil
	})
}
