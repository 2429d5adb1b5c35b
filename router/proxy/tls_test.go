package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// testTLSConfig is a server configuration with a self-signed certificate
// for testHost, offering h2 then HTTP/1.1.
func testTLSConfig(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: testHost}, DNSNames: []string{testHost},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
}

// TestTLSServer: over TLS, HTTP/1.1 requests stay on the fast path and
// HTTP/2 goes to the fallback; both, and what the fast path hands over,
// tell the instance https.
func TestTLSServer(t *testing.T) {
	app := rawBackend(t, func(req *http.Request) (string, bool) {
		body := "proto=" + req.Header.Get("X-Forwarded-Proto")
		return "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body, false
	})
	var fallbackRequests atomic.Int32
	tc := testTLSConfig(t)
	entries := []route.Entry{{Route: testHost, Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "app-0", App: "app"}, Addr: app}}}
	addr, _ := startFast(t, driver{"goroutines", true}, entries, Config{}, func(s *Server) {
		s.TLSConfig = tc
		s.Fallback.TLSConfig = tc
		next := s.Fallback.Handler
		s.Fallback.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fallbackRequests.Add(1)
			next.ServeHTTP(w, r)
		})
	})
	for _, tt := range []struct {
		name         string
		h2, http10   bool
		wantFallback int32
	}{
		{"HTTP/1.1 on the fast path", false, false, 0},
		{"HTTP/2 through net/http", true, false, 1},
		{"HTTP/1.0 handed over", false, true, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fallbackRequests.Store(0)
			if tt.http10 {
				c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: testHost, InsecureSkipVerify: true}) //nolint:gosec // test certificate
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.WriteString(c, "GET / HTTP/1.0\r\nHost: "+testHost+"\r\n\r\n")
				got, _ := io.ReadAll(c)
				if !strings.HasPrefix(string(got), "HTTP/1.0 200") || !strings.HasSuffix(string(got), "proto=https") {
					t.Fatalf("%q", got)
				}
				if n := fallbackRequests.Load(); n != tt.wantFallback {
					t.Errorf("%d requests through the fallback, want %d", n, tt.wantFallback)
				}
				return
			}
			tr := &http.Transport{ForceAttemptHTTP2: tt.h2,
				TLSClientConfig: &tls.Config{ServerName: testHost, InsecureSkipVerify: true}} //nolint:gosec // test certificate
			if !tt.h2 {
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
			req.Host = testHost
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(body), "proto=https") {
				t.Fatalf("%d %q", resp.StatusCode, body)
			}
			if n := fallbackRequests.Load(); n != tt.wantFallback {
				t.Errorf("%d requests through the fallback, want %d", n, tt.wantFallback)
			}
		})
	}
}
