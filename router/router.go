// Package router is driftless's HTTP front door, split like Cloud
// Foundry's gorouter: route/ (the table), registry/ (Consul → table),
// proxy/ (table → instance) and handlers/ (request ids, access log,
// metrics). This file wires them to a listener.
package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/router/handlers"
	"github.com/driftless/driftless/router/proxy"
	"github.com/driftless/driftless/router/registry"
	"github.com/driftless/driftless/router/route"
)

// Config configures a Router.
type Config struct {
	// Listen is the HTTP listen address, e.g. "127.0.0.1:8080".
	Listen string
	Consul *consul.Client
	Log    *slog.Logger
	// AccessLog receives one line per request; nil for none.
	AccessLog io.Writer
	// Metrics registers the router's metrics; nil for none.
	Metrics prometheus.Registerer
}

// Router serves HTTP for the apps registered in Consul.
type Router struct {
	cfg      Config
	log      *slog.Logger
	table    route.Current
	registry *registry.Registry
	proxy    *proxy.Proxy
	handler  http.Handler

	ready    chan struct{}
	mu       sync.Mutex
	addr     string
	listener net.Listener
}

// New prepares a router; Run starts it.
func New(cfg Config) (*Router, error) {
	if cfg.Consul == nil {
		return nil, errors.New("router needs a Consul client")
	}
	if cfg.Listen == "" {
		return nil, errors.New("router needs a listen address")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Router{cfg: cfg, log: cfg.Log.With("component", "router"), ready: make(chan struct{})}
	r.registry = registry.New(registry.Config{Consul: cfg.Consul, Table: &r.table, Log: r.log})
	r.proxy = proxy.New(&r.table, r.log)
	var m *handlers.Metrics
	if cfg.Metrics != nil {
		m = handlers.NewMetrics(cfg.Metrics)
	}
	r.handler = handlers.Wrap(r.proxy, handlers.Config{AccessLog: cfg.AccessLog, Metrics: m, Log: r.log})
	return r, nil
}

// Handler is the router's HTTP handler (for tests and benchmarks).
func (r *Router) Handler() http.Handler { return r.handler }

// Table is the route table in use.
func (r *Router) Table() *route.Table { return r.table.Load() }

// Ready is closed once the router listens and holds the routes Consul had
// when it started.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Addr is the address the router listens on, once Ready.
func (r *Router) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// Run serves until ctx ends, then shuts down gracefully (in-flight
// requests get up to 10 s).
func (r *Router) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("router: listening on %s: %w", r.cfg.Listen, err)
	}
	r.mu.Lock()
	r.addr, r.listener = ln.Addr().String(), ln
	r.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.registry.Run(ctx); err != nil {
			r.log.Error("route registry stopped", "err", err)
		}
	})
	wg.Go(func() {
		select {
		case <-r.registry.Ready():
			r.log.Info("router ready", "addr", r.Addr(), "routes", r.table.Load().Len())
			close(r.ready)
		case <-ctx.Done():
		}
	})

	srv := &http.Server{
		Handler:           r.handler,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = srv.Shutdown(sctx)
		scancel()
	}
	cancel()
	wg.Wait()
	r.proxy.CloseIdle()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
