package router_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router"
)

// startWith runs a router with cfg (Listen and Consul filled in) against a
// fresh Consul and waits until it is ready.
func startWith(t *testing.T, cfg router.Config) (*router.Router, *consul.Client) {
	t.Helper()
	c := testenv.StartConsul(t)
	cfg.Consul = c.Client
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	rtr, err := router.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rtr.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-rtr.Ready():
	case err := <-done:
		t.Fatalf("router stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("router not ready")
	}
	return rtr, c.Client
}

// routed waits until the router answers host with the status want.
func routed(t *testing.T, base, host string, want int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, host+" routed", func() error {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// TestStreaming covers WebSocket upgrades (an echo over the upgraded
// connection), server-sent events flushed as they come, and a large upload
// streamed to the app byte for byte.
func TestStreaming(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			if r.Header.Get("Upgrade") != "websocket" {
				http.Error(w, "want an upgrade", 400)
				return
			}
			conn, rw, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			fmt.Fprint(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			rw.Flush()
			_, _ = io.Copy(conn, rw) // echo
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			<-release // the client must see the first event before this returns
			fmt.Fprint(w, "data: second\n\n")
		case "/upload":
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
		}
	}))
	defer app.Close()
	defer once.Do(func() { close(release) })
	rtr, c := startWith(t, router.Config{})
	register(t, c, "s-0", "stream", 0, app.Listener.Addr().String(), "stream.apps.localhost")
	base := "http://" + rtr.Addr()
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "stream routed", func() error {
		if rtr.Table().Lookup("stream.apps.localhost", "/") == nil {
			return fmt.Errorf("no route yet")
		}
		return nil
	})

	t.Run("websocket echo", func(t *testing.T) {
		conn, err := net.Dial("tcp", rtr.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "GET /ws HTTP/1.1\r\nHost: stream.apps.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		for _, msg := range []string{"hello\n", "again\n"} {
			fmt.Fprint(conn, msg)
			got, err := br.ReadString('\n')
			if err != nil || got != msg {
				t.Fatalf("echo %q, %v; want %q", got, err, msg)
			}
		}
	})

	t.Run("server-sent events flush at once", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base+"/events", nil)
		req.Host = "stream.apps.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("first event %q, %v", line, err)
		}
		once.Do(func() { close(release) })
	})

	t.Run("large upload streamed", func(t *testing.T) {
		const size = 64 << 20
		data := make([]byte, size)
		_, _ = rand.Read(data)
		sum := sha256.Sum256(data)
		req, _ := http.NewRequest(http.MethodPost, base+"/upload", io.NopCloser(strings.NewReader(string(data))))
		req.Host = "stream.apps.localhost"
		req.ContentLength = -1 // chunked: nothing knows the size in advance
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d %x", size, sum); string(body) != want {
			t.Fatalf("app received %q, want %q", body, want)
		}
	})
}

// TestFailuresAndBalancing kills one of two instances under load: no
// request fails (connection refusals are retried on the other instance)
// and the dead instance's circuit opens; least-connections sends new
// requests to the idle instance while the other is busy.
func TestFailuresAndBalancing(t *testing.T) {
	var hitsA, hitsB atomic.Int64
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hitsA.Add(1)
		if r.URL.Path == "/slow" {
			time.Sleep(500 * time.Millisecond)
		}
		io.WriteString(w, "a")
	}))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hitsB.Add(1); io.WriteString(w, "b") }))
	defer b.Close()
	rtr, c := startWith(t, router.Config{})
	register(t, c, "f-0", "f", 0, a.Listener.Addr().String(), "f.apps.localhost")
	register(t, c, "f-1", "f", 1, b.Listener.Addr().String(), "f.apps.localhost")
	base := "http://" + rtr.Addr()
	routed(t, base, "f.apps.localhost", 200)
	get := func(path string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Host = "f.apps.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}

	// Kill b mid-load (its registration stays: Consul has not noticed).
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if code, _ := get("/"); code != 200 {
					failed.Add(1)
				}
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	b.Listener.Close()
	b.CloseClientConnections()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed while an instance died", failed.Load())
	}
	before := hitsA.Load()
	for range 20 {
		if code, body := get("/"); code != 200 || body != "a" {
			t.Fatalf("after the kill: %d %q", code, body)
		}
	}
	if hitsA.Load()-before != 20 {
		t.Fatalf("a got %d of 20 requests", hitsA.Load()-before)
	}
}

// TestStickySessions pins a client that got a JSESSIONID to the instance
// that set it, through Cloud Foundry's __VCAP_ID__ cookie.
func TestStickySessions(t *testing.T) {
	mk := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/login" {
				http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: "s-" + name, Path: "/"})
			}
			io.WriteString(w, name)
		}))
	}
	a, b := mk("a"), mk("b")
	defer a.Close()
	defer b.Close()
	rtr, c := startWith(t, router.Config{})
	register(t, c, "sticky-a", "sticky", 0, a.Listener.Addr().String(), "sticky.apps.localhost")
	register(t, c, "sticky-b", "sticky", 1, b.Listener.Addr().String(), "sticky.apps.localhost")
	base := "http://" + rtr.Addr()
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "both instances routed", func() error {
		if n := rtr.Table().Lookup("sticky.apps.localhost", "/"); n == nil || len(n.Endpoints) != 2 {
			return fmt.Errorf("pool %v", n)
		}
		return nil
	})
	req, _ := http.NewRequest(http.MethodGet, base+"/login", nil)
	req.Host = "sticky.apps.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var vcap *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "__VCAP_ID__" {
			vcap = ck
		}
	}
	if vcap == nil || vcap.Value != "sticky-"+string(body) {
		t.Fatalf("no __VCAP_ID__ naming instance %s: %v", body, resp.Header["Set-Cookie"])
	}
	for range 10 {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = "sticky.apps.localhost"
		req.AddCookie(vcap)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != string(body) {
			t.Fatalf("sticky request answered by %s, want %s", got, body)
		}
	}
}

// TestHardening: oversized or too many headers get 431, a bad Host 400,
// hop-by-hop headers do not reach the app, X-Forwarded-For from an
// untrusted client is replaced, and a client that sends its headers too
// slowly is cut off.
func TestHardening(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "xff=%s te=%s conn=%s keep=%s", r.Header.Get("X-Forwarded-For"), r.Header.Get("Te"),
			r.Header.Get("Connection"), r.Header.Get("Keep-Alive"))
	}))
	defer app.Close()
	rtr, c := startWith(t, router.Config{ReadHeaderTimeout: 300 * time.Millisecond})
	register(t, c, "h-0", "h", 0, app.Listener.Addr().String(), "h.apps.localhost")
	base := "http://" + rtr.Addr()
	routed(t, base, "h.apps.localhost", 200)

	do := func(host string, hdr map[string]string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = host
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(body)
	}
	many := map[string]string{}
	for i := range 150 {
		many[fmt.Sprintf("X-H%d", i)] = "v"
	}
	tests := []struct {
		name     string
		host     string
		hdr      map[string]string
		wantCode int
		wantBody string
	}{
		{"oversized header", "h.apps.localhost", map[string]string{"X-Big": strings.Repeat("x", 40<<10)}, 431, ""},
		{"too many headers", "h.apps.localhost", many, 431, ""},
		{"bad host", "h.apps.localhost/../x", nil, 400, ""},
		{"untrusted X-Forwarded-For replaced", "h.apps.localhost", map[string]string{"X-Forwarded-For": "6.6.6.6"}, 200, "xff=127.0.0.1 "},
		{"hop-by-hop stripped", "h.apps.localhost", map[string]string{"Connection": "X-Secret", "X-Secret": "s", "Keep-Alive": "timeout=5"}, 200, "conn= keep="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := do(tt.host, tt.hdr)
			if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("%d %q, want %d containing %q", code, body, tt.wantCode, tt.wantBody)
			}
		})
	}

	t.Run("slow client cut off", func(t *testing.T) {
		conn, err := net.Dial("tcp", rtr.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprint(conn, "GET / HTTP/1.1\r\nHost: h.apps.localhost\r\n") // never finishes its headers
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(conn)
		if err != nil || time.Since(start) > 3*time.Second {
			t.Fatalf("connection not closed by the router after the read-header timeout: %v after %s", err, time.Since(start))
		}
	})
}

// TestTLS serves two certificates chosen by SNI over HTTP/2, redirects
// plain HTTP to HTTPS, and exposes metrics on their own port.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certs := []router.CertFile{writeCert(t, dir, "one", "one.apps.localhost"), writeCert(t, dir, "two", "*.two.localhost")}
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s proto=%s", r.Host, r.Header.Get("X-Forwarded-Proto"))
	}))
	defer app.Close()
	rtr, c := startWith(t, router.Config{TLSListen: "127.0.0.1:0", Certs: certs, RedirectHTTP: true, MetricsListen: "127.0.0.1:0"})
	register(t, c, "t-0", "one", 0, app.Listener.Addr().String(), "one.apps.localhost", "x.two.localhost")
	for _, tt := range []struct{ host, wantCN string }{{"one.apps.localhost", "one"}, {"x.two.localhost", "two"}} {
		t.Run(tt.host, func(t *testing.T) {
			testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "served over TLS", func() error {
				tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: tt.host}} //nolint:gosec // test certificates
				req, _ := http.NewRequest(http.MethodGet, "https://"+rtr.TLSAddr()+"/", nil)
				req.Host = tt.host
				resp, err := (&http.Client{Transport: tr}).Do(req)
				if err != nil {
					return err
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || !strings.Contains(string(body), "proto=https") {
					return fmt.Errorf("%d %s %q", resp.StatusCode, resp.Proto, body)
				}
				if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != tt.wantCN {
					return fmt.Errorf("certificate %s, want %s", cn, tt.wantCN)
				}
				return nil
			})
		})
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, "http://"+rtr.Addr()+"/a?b=1", nil)
	req.Host = "one.apps.localhost"
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	_, port, _ := net.SplitHostPort(rtr.TLSAddr())
	if want := "https://one.apps.localhost:" + port + "/a?b=1"; resp.StatusCode != 308 || resp.Header.Get("Location") != want {
		t.Fatalf("redirect %d to %q, want 308 to %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
}

// writeCert writes a self-signed certificate for name and returns its files.
func writeCert(t *testing.T, dir, cn, name string) router.CertFile {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cf := router.CertFile{Cert: filepath.Join(dir, cn+".crt"), Key: filepath.Join(dir, cn+".key")}
	if err := os.WriteFile(cf.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cf.Key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cf
}

// TestLeastConnections: with the app's balance set to least-connections
// (a manifest route option, carried in the registration), requests go to
// the instance with the fewest in flight: while one instance serves a slow
// request, every other request goes to the other.
func TestLeastConnections(t *testing.T) {
	mk := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/slow" {
				time.Sleep(time.Second)
			}
			io.WriteString(w, name)
		}))
	}
	a, b := mk("a"), mk("b")
	defer a.Close()
	defer b.Close()
	rtr, c := startWith(t, router.Config{})
	for i, s := range []*httptest.Server{a, b} {
		host, port, _ := net.SplitHostPort(s.Listener.Addr().String())
		p, _ := strconv.Atoi(port)
		in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: fmt.Sprintf("lc-%d", i), Space: "dev", App: "lc", Index: i}, Address: host, Port: p, Routes: []string{"lc.apps.localhost"}, Balance: model.BalanceLeastConnections}
		if err := catalog.Register(c, in, model.HealthCheck{Type: "process"}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "both instances routed", func() error {
		if p := rtr.Table().Lookup("lc.apps.localhost", "/"); p == nil || len(p.Endpoints) != 2 || p.Balance != "least-connections" {
			return fmt.Errorf("pool %+v", p)
		}
		return nil
	})
	get := func(path string) string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+rtr.Addr()+path, nil)
		req.Host = "lc.apps.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	slow := make(chan string, 1)
	go func() { slow <- get("/slow") }()
	time.Sleep(200 * time.Millisecond) // the slow request is in flight
	seen := map[string]int{}
	for range 6 {
		seen[get("/")]++
	}
	busy := <-slow
	if len(seen) != 1 || seen[busy] != 0 {
		t.Fatalf("while %s was busy the others went to %v; want all to the idle instance", busy, seen)
	}
}

// TestDefaultBalance: apps whose routes do not choose get the router's
// balancing; those that do keep theirs.
func TestDefaultBalance(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer app.Close()
	rtr, c := startWith(t, router.Config{Balance: "least-connections"})
	host, port, _ := net.SplitHostPort(app.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	for _, in := range []model.Endpoint{
		{InstanceRef: model.InstanceRef{GUID: "quiet-0", App: "quiet"}, Routes: []string{"quiet.apps.localhost"}},
		{InstanceRef: model.InstanceRef{GUID: "rr-0", App: "rr"}, Routes: []string{"rr.apps.localhost"}, Balance: model.BalanceRoundRobin}} {
		in.Space, in.Address, in.Port = "dev", host, p
		if err := catalog.Register(c, in, model.HealthCheck{Type: "process"}); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "balancing of both", func() error {
		q, r := rtr.Table().Lookup("quiet.apps.localhost", "/"), rtr.Table().Lookup("rr.apps.localhost", "/")
		if q == nil || r == nil || q.Balance != "least-connections" || r.Balance != "round-robin" {
			return fmt.Errorf("pools %+v %+v", q, r)
		}
		return nil
	})
	if _, err := router.New(router.Config{Consul: c, Listen: "127.0.0.1:0", Balance: "random"}); err == nil {
		t.Fatal("an unknown balancing was accepted")
	}
}
