package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/metricsrv"
)

// openMetrics checks a role's metrics address and opens it, with the
// registry its metrics go to: nil, nil when listen is empty (no metrics).
// An address that is not loopback-only without tokenFile is refused
// (metricsrv.ErrOpenListener).
func openMetrics(listen, tokenFile string) (*prometheus.Registry, *metricsrv.Server, error) {
	if listen == "" {
		return nil, nil, nil
	}
	reg := metricsrv.NewRegistry()
	srv, err := metricsrv.Listen(metricsrv.Config{Listen: listen, TokenFile: tokenFile}, reg)
	if err != nil {
		return nil, nil, err
	}
	return reg, srv, nil
}

// serveMetrics serves srv (nil: nothing) until ctx ends or the returned
// function is called, which waits for it to stop.
func serveMetrics(ctx context.Context, srv *metricsrv.Server, log *slog.Logger) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, log) }()
	return func() { cancel(); <-done }
}

// busMetrics count the errors a role meets talking to Consul and NATS.
// A nil *busMetrics counts nothing.
type busMetrics struct {
	consul, nats *prometheus.CounterVec
}

// newBusMetrics registers the Consul and NATS error counters on reg (nil:
// none, and a nil *busMetrics).
func newBusMetrics(reg *prometheus.Registry) (*busMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &busMetrics{
		consul: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftless_consul_errors_total",
			Help: "Consul requests that failed (no answer, or 5xx, 401, 403), by role (controller, cell, router)."}, []string{"role"}),
		nats: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftless_nats_errors_total",
			Help: "NATS connection errors (disconnections, permission violations, slow consumers), by role (controller, cell, router)."}, []string{"role"}),
	}
	for _, c := range []prometheus.Collector{m.consul, m.nats} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the Consul and NATS error counters: %w", err)
		}
	}
	return m, nil
}

// consulClient is catalog.NewClient whose failed requests are counted
// for role.
func (m *busMetrics) consulClient(addr, token, role string) (*consul.Client, error) {
	if m == nil {
		return catalog.NewClient(addr, token)
	}
	cfg := consul.DefaultConfig()
	cfg.Address, cfg.Token, cfg.TokenFile = addr, token, ""
	hc, err := consul.NewHttpClient(cfg.Transport, cfg.TLSConfig)
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", addr, err)
	}
	// The counter is exported from 0 on.
	hc.Transport = countingTransport{next: hc.Transport, failed: m.consul.WithLabelValues(role)}
	cfg.HttpClient = hc
	c, err := consul.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul client for %s: %w", addr, err)
	}
	return c, nil
}

// countingTransport counts requests that get no answer (but those whose
// context ended: a blocking query given up) or an answer 5xx, 401 or 403.
type countingTransport struct {
	next   http.RoundTripper
	failed prometheus.Counter
}

// RoundTrip implements http.RoundTripper.
func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if failedRequest(r.Context(), resp, err) {
		t.failed.Inc()
	}
	return resp, err
}

// failedRequest says whether a Consul request failed.
func failedRequest(ctx context.Context, resp *http.Response, err error) bool {
	if err != nil {
		return ctx.Err() == nil && !errors.Is(err, context.Canceled)
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden
}

// watchNATS counts nc's asynchronous errors and disconnections for role,
// besides what its handlers already do with them.
func (m *busMetrics) watchNATS(nc *nats.Conn, role string) {
	if m == nil {
		return
	}
	c := m.nats.WithLabelValues(role) // exported from 0 on
	prevErr, prevDisc := nc.ErrorHandler(), nc.DisconnectErrHandler()
	nc.SetErrorHandler(func(conn *nats.Conn, sub *nats.Subscription, err error) {
		c.Inc()
		if prevErr != nil {
			prevErr(conn, sub, err)
		}
	})
	nc.SetDisconnectErrHandler(func(conn *nats.Conn, err error) {
		if err != nil {
			c.Inc()
		}
		if prevDisc != nil {
			prevDisc(conn, err)
		}
	})
}
