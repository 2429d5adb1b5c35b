package router_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router"
	"github.com/driftless/driftless/router/proxy"
)

// backend is an app instance: it answers with its name and echoes the
// headers the router set.
func backend(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s host=%s xff=%s proto=%s xhost=%s rid=%s path=%s",
			name, r.Host, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"),
			r.Header.Get("X-Forwarded-Host"), r.Header.Get("X-Request-Id"), r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func register(t *testing.T, c *consul.Client, guid, app string, index int, addr string, routes ...string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	// A port instance: a health check the test passes and fails by hand
	// (setHealth), as its cell would.
	in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: guid, Space: "dev", App: app, Index: index}, Address: host, Port: p, Routes: routes}
	if err := catalog.Register(c, in, model.HealthCheck{Type: "port"}); err != nil {
		t.Fatalf("registering %s: %v", guid, err)
	}
}

// setHealth passes or fails the health check of an instance register
// made.
func setHealth(t *testing.T, c *consul.Client, guid, app string, passing bool) {
	t.Helper()
	in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: guid, Space: "dev", App: app}, Address: "127.0.0.1"}
	if err := catalog.SetCheck(c, in, false, passing); err != nil {
		t.Fatalf("setting the check of %s: %v", guid, err)
	}
}

type env struct {
	consul *consul.Client
	url    string
	log    *syncBuffer
	rtr    *router.Router
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, before func(*consul.Client)) *env {
	t.Helper()
	c := testenv.StartConsul(t)
	if before != nil {
		before(c.Client)
	}
	log := &syncBuffer{}
	rtr, err := router.New(router.Config{Listen: "127.0.0.1:0", Consul: c.Client, AccessLog: log,
		Proxy: proxy.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rtr.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("router Run: %v", err)
		}
	})
	select {
	case <-rtr.Ready():
	case err := <-done:
		t.Fatalf("router stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("router not ready after 30s")
	}
	return &env{consul: c.Client, url: "http://" + rtr.Addr(), log: log, rtr: rtr}
}

func (e *env) get(t *testing.T, host, path string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url+path, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRouterFollowsConsul(t *testing.T) {
	b0, b1, api := backend(t, "hello-0"), backend(t, "hello-1"), backend(t, "api-0")
	// One instance is registered before the router starts: Ready means it is routed.
	e := start(t, func(c *consul.Client) {
		register(t, c, "g0", "hello", 0, b0.Listener.Addr().String(), "hello.apps.localhost")
	})
	if code, body := e.get(t, "hello.apps.localhost", "/"); code != 200 || !strings.HasPrefix(body, "hello-0 ") {
		t.Fatalf("before any change: %d %q", code, body)
	}

	register(t, e.consul, "g1", "hello", 1, b1.Listener.Addr().String(), "hello.apps.localhost")
	register(t, e.consul, "a0", "api", 0, api.Listener.Addr().String(), "hello.apps.localhost/api")
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "both hello instances answer", func() error {
		seen := map[string]bool{}
		for range 4 {
			_, body := e.get(t, "Hello.Apps.Localhost:8080", "/x")
			seen[strings.Fields(body)[0]] = true
		}
		if !seen["hello-0"] || !seen["hello-1"] {
			return fmt.Errorf("seen %v", seen)
		}
		if e.rtr.Table().Lookup("hello.apps.localhost", "/api") == e.rtr.Table().Lookup("hello.apps.localhost", "/") {
			return fmt.Errorf("no /api route yet")
		}
		return nil
	})
	tests := []struct {
		host, path string
		code       int
		want       string
	}{
		{"hello.apps.localhost", "/api/users", 200, "api-0 "},
		{"hello.apps.localhost", "/apix", 200, "hello-"},
		{"nothing.apps.localhost", "/", 404, "driftless: no app is routed at nothing.apps.localhost/\n"},
	}
	for _, tt := range tests {
		if code, body := e.get(t, tt.host, tt.path); code != tt.code || !strings.HasPrefix(body, tt.want) {
			t.Errorf("GET %s%s = %d %q, want %d %q", tt.host, tt.path, code, body, tt.code, tt.want)
		}
	}

	// Headers: X-Forwarded-* set, X-Forwarded-For appended, a valid request id kept.
	_, body := e.get(t, "hello.apps.localhost", "/api", "X-Forwarded-For", "10.1.2.3", "X-Request-Id", "abcdef0123456789")
	for _, want := range []string{"host=hello.apps.localhost", "xff=10.1.2.3, 127.0.0.1", "proto=http", "xhost=hello.apps.localhost", "rid=abcdef0123456789"} {
		if !strings.Contains(body, want) {
			t.Errorf("headers seen by the app: %q lacks %q", body, want)
		}
	}
	_, body = e.get(t, "hello.apps.localhost", "/api")
	if !strings.Contains(body, "rid=") || strings.Contains(body, "rid= ") {
		t.Errorf("no generated request id: %q", body)
	}

	// A failing check takes the instance out of the table.
	setHealth(t, e.consul, "g1", "hello", false)
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "only hello-0 answers", func() error {
		for range 4 {
			if _, body := e.get(t, "hello.apps.localhost", "/"); !strings.HasPrefix(body, "hello-0 ") {
				return fmt.Errorf("got %q", body)
			}
		}
		return nil
	})

	// A dead instance: the router tries another; with none left, 502.
	b0.Close()
	setHealth(t, e.consul, "g1", "hello", true)
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "hello-1 routed again", func() error {
		if len(e.rtr.Table().Lookup("hello.apps.localhost", "/").Endpoints) != 2 {
			return fmt.Errorf("pool %+v", e.rtr.Table().Lookup("hello.apps.localhost", "/"))
		}
		return nil
	})
	for range 4 {
		if code, body := e.get(t, "hello.apps.localhost", "/"); code != 200 || !strings.HasPrefix(body, "hello-1 ") {
			t.Fatalf("with hello-0 dead: %d %q (should retry on hello-1)", code, body)
		}
	}
	b1.Close()
	if code, body := e.get(t, "hello.apps.localhost", "/"); code != 502 || body != "driftless: no healthy instance of hello answered\n" {
		t.Errorf("all dead: %d %q", code, body)
	}

	// Deregistering removes the route.
	for _, id := range []string{"g0", "g1"} {
		in := model.Endpoint{InstanceRef: model.InstanceRef{GUID: id, Space: "dev", App: "hello"}, Address: "127.0.0.1"}
		if err := catalog.Deregister(e.consul, in); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "hello unrouted", func() error {
		if code, _ := e.get(t, "hello.apps.localhost", "/"); code != 404 {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
	if code, _ := e.get(t, "hello.apps.localhost", "/api"); code != 200 {
		t.Errorf("api route lost with hello: %d", code)
	}

	logs := e.log.String()
	for _, want := range []string{`"GET / HTTP/1.1" 404`, `" 502 `, `app="api"`, `route="hello.apps.localhost/api"`, "request_id=abcdef0123456789"} {
		if !strings.Contains(logs, want) {
			t.Errorf("access log lacks %q:\n%s", want, logs)
		}
	}
}
