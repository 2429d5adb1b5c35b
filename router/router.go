// Package router is driftless's HTTP front door, split like Cloud
// Foundry's gorouter: route/ (the table), registry/ (Consul → table),
// proxy/ (table → instance) and handlers/ (request ids, access log,
// metrics). This file wires them to a listener.
package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/handlers"
	"github.com/driftless/driftless/router/proxy"
	"github.com/driftless/driftless/router/registry"
	"github.com/driftless/driftless/router/route"
	"github.com/driftless/driftless/router/wake"
)

// Config configures a Router.
type Config struct {
	// Listen is the HTTP listen address, e.g. "127.0.0.1:8080".
	Listen string
	// TLSListen, with Certs, also serves HTTPS (HTTP/2 and HTTP/1.1) there.
	TLSListen string
	// Certs are the certificates served over TLS, chosen by SNI among
	// their names (the first one when none matches).
	Certs []CertFile
	// RedirectHTTP answers plain HTTP with a redirect to HTTPS.
	RedirectHTTP bool
	// NetHTTP2 serves HTTP/2 (over TLS, and h2c with prior knowledge on
	// the plain listener) with net/http's HTTP/2 server and ReverseProxy,
	// as before the fast path served it (proxy.Server.FastH2).
	NetHTTP2 bool
	// MetricsListen serves Prometheus metrics at /metrics (and Go profiles
	// at /debug/pprof/) on its own
	// address; empty for none.
	MetricsListen string
	Consul        *consul.Client
	Log           *slog.Logger
	// AccessLog receives one line per request; nil for none. A file
	// (*os.File, stdout included) is written in batches: lines reach it
	// within AccessLogFlush (handlers.BufferedLog), and all of them by
	// the time Run returns.
	AccessLog io.Writer
	// Metrics registers the router's metrics; nil makes a registry of
	// its own (served on MetricsListen).
	Metrics prometheus.Registerer
	// Proxy tunes timeouts, circuits and trusted proxies.
	Proxy proxy.Config
	// Balance is the balancing of apps whose routes do not choose one:
	// round-robin (the default) or least-connections.
	Balance model.Balance
	// Limits: request headers at most MaxHeaderBytes (default 32 KB,
	// request line included) and MaxHeaders fields (default 100), else
	// 431; headers must arrive within ReadHeaderTimeout (default 10 s:
	// slowloris); idle keep-alive connections close after IdleTimeout
	// (default 120 s).
	MaxHeaderBytes    int
	MaxHeaders        int
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	// NATS wakes sleeping apps (a request to one is held while it wakes)
	// and carries the router's activity (requests per app, every
	// ActivityInterval, default 10 s); nil for neither: a sleeping app's
	// routes answer 503.
	NATS *nats.Conn
	// AppLogs publishes each routed request's line into the app's log
	// (RTR lines, `driftless logs APP --source RTR`) over NATS.
	AppLogs bool
	// Name names the router in its messages (default the host name).
	Name             string
	ActivityInterval time.Duration
	// MaxHeld bounds the requests held per sleeping app (default 100);
	// more are answered 503 at once.
	MaxHeld int
}

// CertFile is a PEM certificate chain and its key.
type CertFile struct{ Cert, Key string }

// AccessLogFlush is how long an access log line may wait in the buffer
// before it is written to the access log file; accessLogBuffer bounds
// the lines waiting.
const (
	AccessLogFlush  = 250 * time.Millisecond
	accessLogBuffer = 64 << 10
)

// DefaultReadHeaderTimeout is how long a client may take to send its
// request headers when Config leaves it zero.
const DefaultReadHeaderTimeout = 10 * time.Second

func (c *Config) defaults() {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 32 << 10
	}
	if c.MaxHeaders == 0 {
		c.MaxHeaders = 100
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
}

// Router serves HTTP for the apps registered in Consul.
type Router struct {
	cfg      Config
	log      *slog.Logger
	table    route.Current
	registry *registry.Registry
	waker    *wake.Waker
	proxy    *proxy.Proxy
	handler  http.Handler
	observer *handlers.Observer
	gatherer prometheus.Gatherer
	conns    prometheus.Gauge
	tlsConf  *tls.Config
	// accessLog batches the writes to an access log file (nil else).
	accessLog *handlers.BufferedLog

	ready chan struct{}
	mu    sync.Mutex
	addr  string
	tls   string
}

// New prepares a router; Run starts it.
func New(cfg Config) (*Router, error) {
	if cfg.Consul == nil {
		return nil, errors.New("router needs a Consul client")
	}
	if cfg.Listen == "" {
		return nil, errors.New("router needs a listen address")
	}
	cfg.defaults()
	balance, err := model.ParseBalance(string(cfg.Balance))
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	cfg.Balance = balance
	r := &Router{cfg: cfg, log: cfg.Log.With("component", "router"), ready: make(chan struct{})}
	if cfg.TLSListen != "" {
		if len(cfg.Certs) == 0 {
			return nil, errors.New("router: TLS needs at least one certificate")
		}
		// h2 first: HTTP/2 when the client speaks it (on the fast path,
		// or net/http's server with NetHTTP2), HTTP/1.1 on the fast path
		// otherwise.
		// Records of up to 16 KB from a connection's start, as nginx's
		// ssl_buffer_size: a response that fits is one record and one
		// write, not records of ~1.2 KB growing over the first 128 KB.
		tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}, DynamicRecordSizingDisabled: true}
		for _, c := range cfg.Certs {
			cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
			if err != nil {
				return nil, fmt.Errorf("router: loading certificate %s: %w", c.Cert, err)
			}
			tc.Certificates = append(tc.Certificates, cert)
		}
		r.tlsConf = tc
	}
	reg := cfg.Metrics
	if reg == nil {
		pr := prometheus.NewRegistry()
		reg, r.gatherer = pr, pr
	} else if g, ok := reg.(prometheus.Gatherer); ok {
		r.gatherer = g
	}
	r.waker = wake.New(wake.Config{Consul: cfg.Consul, Table: &r.table, NATS: cfg.NATS, Router: cfg.Name,
		MaxHeld: cfg.MaxHeld, ActivityInterval: cfg.ActivityInterval, Metrics: reg, Log: r.log})
	r.registry = registry.New(registry.Config{Consul: cfg.Consul, Table: &r.table, Log: r.log, DefaultBalance: cfg.Balance,
		OnUpdate: r.waker.Updated})
	proxyCfg := cfg.Proxy
	proxyCfg.Waker = r.waker
	r.proxy = proxy.New(&r.table, proxyCfg, r.log)
	m := handlers.NewMetrics(reg)
	r.conns = prometheus.NewGauge(prometheus.GaugeOpts{Name: "driftless_router_open_connections", Help: "Client connections open."})
	reg.MustRegister(r.conns,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "driftless_router_routes", Help: "Routes in the route table."},
			func() float64 { return float64(r.table.Load().Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "driftless_router_route_table_age_seconds", Help: "Time since the route table was last rebuilt."},
			func() float64 {
				if t := r.table.Load(); t != nil {
					return time.Since(t.Built).Seconds()
				}
				return 0
			}))
	hc := handlers.Config{AccessLog: cfg.AccessLog, Metrics: m, Log: r.log}
	if f, ok := cfg.AccessLog.(*os.File); ok {
		r.accessLog = handlers.NewBufferedLog(f, accessLogBuffer, AccessLogFlush)
		hc.AccessLog = r.accessLog
	}
	if cfg.AppLogs && cfg.NATS != nil {
		hc.AppLog = handlers.NATSAppLog{NC: cfg.NATS, Log: r.log}
	}
	r.observer = handlers.NewObserver(hc)
	r.handler = handlers.Wrap(limitHeaders(r.proxy, cfg.MaxHeaders), r.observer)
	return r, nil
}

// limitHeaders answers 431 to requests with more than max header fields.
func limitHeaders(next http.Handler, max int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		for _, v := range r.Header {
			n += len(v)
		}
		if n > max {
			w.Header().Set("Connection", "close")
			http.Error(w, "driftless: too many request header fields", http.StatusRequestHeaderFieldsTooLarge)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Handler is the router's HTTP handler (for tests and benchmarks).
func (r *Router) Handler() http.Handler { return r.handler }

// Table is the route table in use.
func (r *Router) Table() *route.Table { return r.table.Load() }

// Ready is closed once the router listens and holds the routes (and the
// sleeping apps) Consul had when it started.
func (r *Router) Ready() <-chan struct{} { return r.ready }

// Addr is the address the router listens on, once Ready.
func (r *Router) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// TLSAddr is the address of the HTTPS listener, once Ready ("" without TLS).
func (r *Router) TLSAddr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tls
}

// Run serves until ctx ends, then shuts down gracefully (in-flight
// requests get up to 10 s).
func (r *Router) Run(ctx context.Context) error {
	ln, err := proxy.Listen(ctx, r.cfg.Listen)
	if err != nil {
		return fmt.Errorf("router: %w", err)
	}
	var tlsLn, metricsLn net.Listener
	if r.tlsConf != nil {
		if tlsLn, err = proxy.Listen(ctx, r.cfg.TLSListen); err != nil {
			ln.Close()
			return fmt.Errorf("router: %w", err)
		}
	}
	if r.cfg.MetricsListen != "" {
		if metricsLn, err = net.Listen("tcp", r.cfg.MetricsListen); err != nil {
			ln.Close()
			if tlsLn != nil {
				tlsLn.Close()
			}
			return fmt.Errorf("router: listening on %s: %w", r.cfg.MetricsListen, err)
		}
	}
	r.mu.Lock()
	r.addr = ln.Addr().String()
	if tlsLn != nil {
		r.tls = tlsLn.Addr().String()
	}
	r.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.registry.Run(ctx); err != nil {
			r.log.Error("route registry stopped", "err", err)
		}
	})
	wg.Go(func() { r.waker.Run(ctx) })
	wg.Go(func() {
		select {
		case <-r.registry.Ready():
		case <-ctx.Done():
			return
		}
		select {
		case <-r.waker.Ready():
			r.log.Info("router ready", "addr", r.Addr(), "tls", r.TLSAddr(), "routes", r.table.Load().Len())
			close(r.ready)
		case <-ctx.Done():
		}
	})

	// Plain HTTP: the fast path (net/http behind it for what it hands
	// over), or redirects to HTTPS.
	var servers []interface{ Shutdown(context.Context) error }
	errc := make(chan error, 3)
	if r.cfg.RedirectHTTP && tlsLn != nil {
		s := r.server(redirectToHTTPS(tlsLn.Addr().String()))
		servers = append(servers, s)
		go func() { errc <- s.Serve(ln) }()
	} else {
		// The fallback also takes HTTP/2 over cleartext with prior
		// knowledge: the fast path hands such connections over.
		fallback := r.server(r.handler)
		fallback.Protocols = new(http.Protocols)
		fallback.Protocols.SetHTTP1(true)
		fallback.Protocols.SetUnencryptedHTTP2(true)
		s := r.fastServer(fallback, nil)
		s.FastH2 = !r.cfg.NetHTTP2
		servers = append(servers, s)
		go func() { errc <- s.Serve(ln) }()
	}
	if tlsLn != nil {
		// HTTPS: HTTP/1.1 and HTTP/2 on the fast path (a goroutine per
		// connection), what the fast path hands over through net/http.
		fallback := r.server(r.handler)
		fallback.TLSConfig = r.tlsConf
		s := r.fastServer(fallback, r.tlsConf)
		s.FastH2 = !r.cfg.NetHTTP2
		servers = append(servers, s)
		go func() { errc <- s.Serve(tlsLn) }()
	}
	if metricsLn != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(r.gatherer, promhttp.HandlerOpts{}))
		// Profiles, on the same private port as the metrics.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, s)
		go func() { errc <- s.Serve(metricsLn) }()
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	for _, s := range servers {
		if serr := s.Shutdown(sctx); err == nil {
			err = serr
		}
	}
	scancel()
	cancel()
	wg.Wait()
	r.proxy.Close()
	if r.accessLog != nil {
		_ = r.accessLog.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// fastServer is the fast path with the router's limits, handing over to
// fallback; tc makes it serve TLS.
func (r *Router) fastServer(fallback *http.Server, tc *tls.Config) *proxy.Server {
	return &proxy.Server{Proxy: r.proxy, Observer: r.observer, Fallback: fallback, TLSConfig: tc,
		MaxHeaderBytes: r.cfg.MaxHeaderBytes, MaxHeaders: r.cfg.MaxHeaders,
		ReadHeaderTimeout: r.cfg.ReadHeaderTimeout, IdleTimeout: r.cfg.IdleTimeout,
		OnConn: func(d int) { r.conns.Add(float64(d)) }, Log: r.log}
}

// server is an HTTP server with the router's limits and a count of open
// connections.
func (r *Router) server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: r.cfg.ReadHeaderTimeout,
		IdleTimeout:       r.cfg.IdleTimeout,
		MaxHeaderBytes:    r.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
		ConnState: func(c net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				if !proxy.HandedOver(c) { // counted by the fast path
					r.conns.Inc()
				}
			case http.StateClosed, http.StateHijacked:
				r.conns.Dec()
			}
		},
	}
}

// redirectToHTTPS answers every request with a permanent redirect to the
// same URL over HTTPS (on tlsAddr's port when it is not 443).
func redirectToHTTPS(tlsAddr string) http.Handler {
	_, port, _ := net.SplitHostPort(tlsAddr)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		host := model.NormalizeHost(req.Host)
		if port != "443" && port != "" {
			host = net.JoinHostPort(host, port)
		}
		http.Redirect(w, req, "https://"+host+req.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}
