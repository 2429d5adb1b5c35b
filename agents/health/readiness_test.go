package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
)

// TestProbeReadiness probes readiness checks (model.ReadinessCheck.Probe)
// of an instance that flips between ready and not ready while alive.
func TestProbeReadiness(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ready" && ready.Load():
			w.WriteHeader(http.StatusOK)
		case r.URL.Path == "/ready":
			w.WriteHeader(http.StatusServiceUnavailable)
		case r.URL.Path == "/slow":
			time.Sleep(1500 * time.Millisecond)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name    string
		rc      model.ReadinessCheck
		ready   bool
		wantErr string
	}{
		{"http ready", model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/ready"}, true, ""},
		{"http not ready", model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/ready"}, false, "status 503"},
		{"port: listening is ready", model.ReadinessCheck{Type: model.HealthPort}, false, ""},
		{"process: always ready", model.ReadinessCheck{Type: model.HealthProcess, Endpoint: "/ready"}, false, ""},
		{"invocation timeout bounds a probe", model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/slow", InvocationTimeoutSec: 1}, true, "deadline exceeded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready.Store(tc.ready)
			err := Probe(context.Background(), tc.rc.Probe(), addr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("probe: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("probe error %v, want %q", err, tc.wantErr)
			}
		})
	}
}
