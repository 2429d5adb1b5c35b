package platform

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/driftless/driftless/internal/metricsrv"
)

// TestMetricsRefuseOpenAddress: every role refuses, before it starts
// anything, to serve its metrics on an address other hosts reach
// without a token.
func TestMetricsRefuseOpenAddress(t *testing.T) {
	tests := []struct {
		role string
		run  func(ctx context.Context) error
	}{
		{"controller", func(ctx context.Context) error {
			return RunController(ctx, ControllerConfig{MetricsListen: "0.0.0.0:0"})
		}},
		{"agent", func(ctx context.Context) error { return RunAgent(ctx, AgentConfig{MetricsListen: ":0"}) }},
		{"router", func(ctx context.Context) error {
			cfg := DefaultRouterConfig()
			cfg.MetricsListen = "0.0.0.0:0"
			return RunRouter(ctx, cfg)
		}},
		{"dev", func(ctx context.Context) error { return RunDev(ctx, DevConfig{MetricsListen: "0.0.0.0:0"}) }},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := tt.run(ctx); !errors.Is(err, metricsrv.ErrOpenListener) {
				t.Fatalf("%s with metrics on every interface and no token: %v, want ErrOpenListener", tt.role, err)
			}
		})
	}
}

func TestFailedRequest(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		status int
		err    error
		want   bool
	}{
		{"ok", context.Background(), 200, nil, false},
		{"a missing key", context.Background(), 404, nil, false},
		{"server error", context.Background(), 500, nil, true},
		{"no leader", context.Background(), 503, nil, true},
		{"ACL denied", context.Background(), 403, nil, true},
		{"no token", context.Background(), 401, nil, true},
		{"refused", context.Background(), 0, errors.New("connection refused"), true},
		{"a blocking query given up", canceled, 0, context.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp *http.Response
			if tt.err == nil {
				resp = &http.Response{StatusCode: tt.status}
			}
			if got := failedRequest(tt.ctx, resp, tt.err); got != tt.want {
				t.Fatalf("failedRequest = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestConsulErrorsCounted: a Consul client of a role with metrics counts
// the requests its Consul answers with an error; without metrics it is a
// plain client.
func TestConsulErrorsCounted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "rpc error: no leader", http.StatusInternalServerError)
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	bm, err := newBusMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := bm.consulClient(srv.Listener.Addr().String(), "", "cell")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := cc.KV().Get("x", nil); err == nil {
			t.Fatal("a 500 was no error")
		}
	}
	var m dto.Metric
	if err := bm.consul.WithLabelValues("cell").Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 3 {
		t.Fatalf("driftless_consul_errors_total{role=cell} = %v, want 3", got)
	}
	var none *busMetrics
	if _, err := none.consulClient(srv.Listener.Addr().String(), "", "cell"); err != nil {
		t.Fatalf("a client without metrics: %v", err)
	}
	if nm, err := newBusMetrics(nil); nm != nil || err != nil {
		t.Fatalf("newBusMetrics(nil) = %v, %v; want none", nm, err)
	}
}
