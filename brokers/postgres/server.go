package postgres

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/internal/ticks"
)

// DefaultQuotaInterval is how often Run checks the instances' sizes.
const DefaultQuotaInterval = time.Minute

// Config configures the broker.
type Config struct {
	// Listen is the address Run serves the OSB API on, e.g. ":8443".
	Listen string
	// DSN reaches the PostgreSQL server (13 or later) as a superuser, e.g.
	// children.StartPostgres's; its database keeps the broker's records. It
	// holds a password: it is never logged.
	DSN string
	// PublicHost and PublicPort are the server's address as apps reach it,
	// put in bindings' credentials; empty or 0 means the DSN's host or port.
	PublicHost string
	PublicPort int
	// Username and Password are the broker's basic auth credentials, both
	// required.
	Username, Password string
	// Log receives the broker's log; nil means slog.Default().
	Log *slog.Logger
	// QuotaInterval is how often Run checks sizes against the plans' quotas;
	// 0 means DefaultQuotaInterval.
	QuotaInterval time.Duration
}

// Broker is the OSB server: an http.Handler of the /v2 API over one
// PostgreSQL server.
type Broker struct {
	cfg   Config
	log   *slog.Logger
	pool  *pgxpool.Pool
	store store
	host  string
	port  int
	mux   *http.ServeMux

	// mu serialises the operations that change the server: every one is a
	// few statements, and two at once on the same instance would race.
	mu sync.Mutex
}

// New connects to the PostgreSQL server, creates the broker's schema if it
// is missing, and returns the broker. Close it when done.
func New(ctx context.Context, cfg Config) (*Broker, error) {
	if cfg.Username == "" || cfg.Password == "" {
		return nil, errors.New("postgres broker: Username and Password (basic auth) are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	pcfg, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		// pgx's parse errors may quote the DSN, password included.
		return nil, errors.New("postgres broker: the DSN cannot be parsed (not shown: it holds a password)")
	}
	pcfg.MaxConns = 4
	b := &Broker{cfg: cfg, log: cfg.Log.With("broker", "postgresql"), host: cfg.PublicHost, port: cfg.PublicPort}
	if b.host == "" {
		b.host = pcfg.ConnConfig.Host
	}
	if b.port == 0 {
		b.port = int(pcfg.ConnConfig.Port)
	}
	b.pool, err = pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres broker: connecting to %s: %w", net.JoinHostPort(pcfg.ConnConfig.Host, strconv.Itoa(int(pcfg.ConnConfig.Port))), err)
	}
	b.store = store{pool: b.pool}
	if err := b.store.migrate(ctx); err != nil {
		b.pool.Close()
		return nil, fmt.Errorf("postgres broker: %w", err)
	}
	b.routes()
	return b, nil
}

// Close closes the broker's connections to the server.
func (b *Broker) Close() { b.pool.Close() }

func (b *Broker) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /v2/catalog", b.catalog)
	m.HandleFunc("PUT /v2/service_instances/{instance_id}", b.provision)
	m.HandleFunc("PATCH /v2/service_instances/{instance_id}", b.update)
	m.HandleFunc("DELETE /v2/service_instances/{instance_id}", b.deprovision)
	m.HandleFunc("GET /v2/service_instances/{instance_id}", b.getInstance)
	m.HandleFunc("GET /v2/service_instances/{instance_id}/last_operation", b.lastOperation)
	m.HandleFunc("PUT /v2/service_instances/{instance_id}/service_bindings/{binding_id}", b.bind)
	m.HandleFunc("DELETE /v2/service_instances/{instance_id}/service_bindings/{binding_id}", b.unbind)
	m.HandleFunc("GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}", b.getBinding)
	m.HandleFunc("GET /v2/service_instances/{instance_id}/service_bindings/{binding_id}/last_operation", b.bindingLastOperation)
	b.mux = m
}

// ServeHTTP serves the OSB API: it refuses a request without basic auth
// matching Config's (401) or without an X-Broker-API-Version of at least
// 2.13 (412), then routes it.
func (b *Broker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		b.log.Info("osb request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"request_id", r.Header.Get(osb.HeaderRequestIdentity), "took", time.Since(start).Round(time.Millisecond))
	}()
	if !b.authorized(r) {
		rec.Header().Set("WWW-Authenticate", `Basic realm="driftless postgresql broker"`)
		fail(rec, http.StatusUnauthorized, "Unauthorized", "wrong or missing broker credentials")
		return
	}
	if v := r.Header.Get(osb.HeaderAPIVersion); !versionAccepted(v) {
		fail(rec, http.StatusPreconditionFailed, "PreconditionFailed",
			fmt.Sprintf("%s %q refused: this broker speaks 2.13 to %s", osb.HeaderAPIVersion, v, osb.APIVersion))
		return
	}
	b.mux.ServeHTTP(rec, r)
}

func (b *Broker) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	if !ok {
		return false
	}
	uok := subtle.ConstantTimeCompare([]byte(u), []byte(b.cfg.Username)) == 1
	pok := subtle.ConstantTimeCompare([]byte(p), []byte(b.cfg.Password)) == 1
	return uok && pok
}

// versionAccepted: 2.x with x ≥ 13.
func versionAccepted(v string) bool {
	major, minor, ok := strings.Cut(strings.TrimSpace(v), ".")
	if !ok {
		return false
	}
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	return err1 == nil && err2 == nil && ma == 2 && mi >= 13
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// fail answers an error body {"error": code, "description": …}.
func fail(w http.ResponseWriter, status int, code, description string) {
	reply(w, status, osb.ErrorResponse{Error: code, Description: description})
}

// gone answers 410 with the body the specification asks for, {}.
func gone(w http.ResponseWriter) { reply(w, http.StatusGone, struct{}{}) }

// internal logs err (which never holds a password) and answers 500
// without details.
func (b *Broker) internal(w http.ResponseWriter, what string, err error) {
	b.log.Error("osb operation failed", "op", what, "err", err)
	fail(w, http.StatusInternalServerError, "InternalError", what+" failed; see the broker's log")
}

// decode reads a JSON request body into v, answering 400 when it cannot.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "BadRequest", "the body is not a valid JSON request: "+err.Error())
		return false
	}
	return true
}

// planRefQuery checks the service_id and plan_id query parameters the
// specification requires on deprovision and unbind.
func planRefQuery(w http.ResponseWriter, r *http.Request) bool {
	q := r.URL.Query()
	if q.Get("service_id") == "" || q.Get("plan_id") == "" {
		fail(w, http.StatusBadRequest, "BadRequest", "service_id and plan_id query parameters are required")
		return false
	}
	if q.Get("service_id") != ServiceID {
		fail(w, http.StatusBadRequest, "BadRequest", fmt.Sprintf("unknown service_id %q", q.Get("service_id")))
		return false
	}
	return true
}

func (b *Broker) catalog(w http.ResponseWriter, _ *http.Request) {
	reply(w, http.StatusOK, Catalog())
}

// Serve serves the OSB API on ln and checks quotas every
// Config.QuotaInterval until ctx ends, then shuts the server down.
func (b *Broker) Serve(ctx context.Context, ln net.Listener) error {
	interval := b.cfg.QuotaInterval
	if interval <= 0 {
		interval = DefaultQuotaInterval
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go ticks.NowAndEvery(ctx, interval, func() {
		if err := b.CheckQuotas(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("checking quotas", "err", err)
		}
	})
	srv := &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(b.log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	b.log.Info("serving the OSB API", "addr", ln.Addr().String(), "postgres", net.JoinHostPort(b.host, strconv.Itoa(b.port)))
	select {
	case err := <-errc:
		return fmt.Errorf("postgres broker: serving: %w", err)
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("postgres broker: shutting down: %w", err)
	}
	return nil
}

// Run is the broker's role: it connects to the PostgreSQL server (New),
// listens on cfg.Listen and serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	b, err := New(ctx, cfg)
	if err != nil {
		return err
	}
	defer b.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("postgres broker: listening on %s: %w", cfg.Listen, err)
	}
	return b.Serve(ctx, ln)
}
