package router_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// h2cOnly is an instance that speaks only HTTP/2 over cleartext (prior
// knowledge): an HTTP/1.1 request to it fails. It answers with its name
// and the protocol the request came in.
func h2cOnly(t *testing.T, name string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s proto=%s host=%s", name, r.Proto, r.Host)
	}), ReadHeaderTimeout: 5 * time.Second}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// registerEndpoint registers ep at addr with health check hc.
func registerEndpoint(t *testing.T, c *consul.Client, ep model.Endpoint, addr string, hc model.HealthCheck) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ep.Address = host
	ep.Port, _ = strconv.Atoi(port)
	if err := catalog.Register(c, ep, hc); err != nil {
		t.Fatalf("registering %s: %v", ep.GUID, err)
	}
}

// TestH2CBackends routes, through a real Consul, an http2 route to an
// instance that speaks only h2c (the router speaks HTTP/2 to it while the
// client speaks HTTP/1.1 to the router, on new and on kept-alive
// connections) and an http1 route of the same router to an HTTP/1.1
// instance.
func TestH2CBackends(t *testing.T) {
	e := start(t, nil)
	h2 := h2cOnly(t, "grpc")
	h1 := backend(t, "web")
	registerEndpoint(t, e.consul, model.Endpoint{InstanceRef: model.InstanceRef{GUID: "h2-0", Space: "dev", App: "grpc"},
		Routes: []string{"grpc.apps.localhost", "grpc-h1.apps.localhost"}, HTTP2Routes: []string{"grpc.apps.localhost"}},
		h2, model.HealthCheck{Type: "process"})
	registerEndpoint(t, e.consul, model.Endpoint{InstanceRef: model.InstanceRef{GUID: "h1-0", Space: "dev", App: "web"},
		Routes: []string{"web.apps.localhost"}}, h1.Listener.Addr().String(), model.HealthCheck{Type: "process"})
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "routes in the table", func() error {
		if n := e.rtr.Table().Len(); n != 3 {
			return fmt.Errorf("%d routes", n)
		}
		return nil
	})
	tests := []struct {
		name, host string
		status     int
		want       string
	}{
		{"http2 route speaks h2c", "grpc.apps.localhost", http.StatusOK, "grpc proto=HTTP/2.0 host=grpc.apps.localhost"},
		{"http2 route again (kept-alive connection)", "grpc.apps.localhost", http.StatusOK, "grpc proto=HTTP/2.0"},
		{"http1 route of an h2c-only instance fails", "grpc-h1.apps.localhost", http.StatusBadGateway, "driftless: no healthy instance of grpc"},
		{"http1 route keeps HTTP/1.1", "web.apps.localhost", http.StatusOK, "web host=web.apps.localhost"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.get(t, tc.host, "/")
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("GET %s: %d %q, want %d with %q", tc.host, status, body, tc.status, tc.want)
			}
		})
	}
}

// TestReadinessLeavesRouting: an instance whose readiness check its cell
// fails stays registered but the router stops sending it requests; once
// the check passes again it gets them again.
func TestReadinessLeavesRouting(t *testing.T) {
	e := start(t, nil)
	hc := model.HealthCheck{Type: "port", Readiness: model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/ready"}}
	for i, name := range []string{"a", "b"} {
		registerEndpoint(t, e.consul, model.Endpoint{InstanceRef: model.InstanceRef{GUID: "r-" + name, Space: "dev", App: "ready", Index: i},
			Routes: []string{"ready.apps.localhost"}}, backend(t, name).Listener.Addr().String(), hc)
	}
	answers := func(what string, want ...string) {
		t.Helper()
		testenv.Eventually(t, 15*time.Second, 50*time.Millisecond, what, func() error {
			seen := map[string]bool{}
			for range 8 {
				_, body := e.get(t, "ready.apps.localhost", "/")
				name, _, _ := strings.Cut(body, " ")
				seen[name] = true
			}
			if len(seen) != len(want) {
				return fmt.Errorf("answered by %v, want %v", seen, want)
			}
			for _, w := range want {
				if !seen[w] {
					return fmt.Errorf("answered by %v, want %v", seen, want)
				}
			}
			return nil
		})
	}
	answers("both ready", "a", "b")
	rb := model.Endpoint{InstanceRef: model.InstanceRef{GUID: "r-b", Space: "dev", App: "ready", Index: 1}, Address: "127.0.0.1"}
	if err := catalog.SetCheck(e.consul, rb, true, false); err != nil {
		t.Fatal(err)
	}
	answers("b not ready: only a", "a")
	if err := catalog.SetCheck(e.consul, rb, true, true); err != nil {
		t.Fatal(err)
	}
	answers("b ready again", "a", "b")
}

// TestH2CClients: a client speaking HTTP/2 over cleartext with prior
// knowledge to the router's plain listener is served (the fast path hands
// its connection to net/http), on http1 and http2 routes alike.
func TestH2CClients(t *testing.T) {
	e := start(t, nil)
	registerEndpoint(t, e.consul, model.Endpoint{InstanceRef: model.InstanceRef{GUID: "h2-0", Space: "dev", App: "grpc"},
		Routes: []string{"grpc.apps.localhost"}, HTTP2Routes: []string{"grpc.apps.localhost"}},
		h2cOnly(t, "grpc"), model.HealthCheck{Type: "process"})
	registerEndpoint(t, e.consul, model.Endpoint{InstanceRef: model.InstanceRef{GUID: "h1-0", Space: "dev", App: "web"},
		Routes: []string{"web.apps.localhost"}}, backend(t, "web").Listener.Addr().String(), model.HealthCheck{Type: "process"})
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "routes in the table", func() error {
		if n := e.rtr.Table().Len(); n != 2 {
			return fmt.Errorf("%d routes", n)
		}
		return nil
	})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	tests := []struct{ host, want string }{
		{"grpc.apps.localhost", "grpc proto=HTTP/2.0"},
		{"web.apps.localhost", "web host=web.apps.localhost"},
		{"grpc.apps.localhost", "grpc proto=HTTP/2.0"},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/", nil)
		req.Host = tc.host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("h2c GET %s: %v", tc.host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK || !strings.Contains(string(body), tc.want) {
			t.Fatalf("h2c GET %s: %s %d %q, want HTTP/2 200 with %q", tc.host, resp.Proto, resp.StatusCode, body, tc.want)
		}
	}
}
