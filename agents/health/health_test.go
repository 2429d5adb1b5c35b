package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/health":
			w.WriteHeader(http.StatusOK)
		case "/redirect":
			http.Redirect(w, r, "/health", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	live := strings.TrimPrefix(srv.URL, "http://")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close() // nothing listens there any more

	tests := []struct {
		name    string
		hc      model.HealthCheck
		addr    string
		wantErr string
	}{
		{"port open", model.HealthCheck{Type: "port"}, live, ""},
		{"port closed", model.HealthCheck{Type: "port"}, dead, "port health check"},
		{"default is port", model.HealthCheck{}, dead, "port health check"},
		{"http ok", model.HealthCheck{Type: "http", Endpoint: "/health"}, live, ""},
		{"http 503", model.HealthCheck{Type: "http", Endpoint: "/down"}, live, "status 503"},
		{"http redirect is not healthy", model.HealthCheck{Type: "http", Endpoint: "/redirect"}, live, "status 302"},
		{"http refused", model.HealthCheck{Type: "http", Endpoint: "/health"}, dead, "connect"},
		{"process needs nothing", model.HealthCheck{Type: "process"}, dead, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Probe(context.Background(), tc.hc, tc.addr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestWaitHealthy(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	go func() {
		time.Sleep(300 * time.Millisecond)
		l2, err := net.Listen("tcp", addr)
		if err != nil {
			return
		}
		time.Sleep(2 * time.Second)
		l2.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := WaitHealthy(ctx, model.HealthCheck{Type: "port"}, addr, 50*time.Millisecond); err != nil {
		t.Fatalf("never healthy: %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	err = WaitHealthy(ctx2, model.HealthCheck{Type: "http", Endpoint: "/"}, "127.0.0.1:1", 50*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Fatalf("want a deadline error, got %v", err)
	}
}
