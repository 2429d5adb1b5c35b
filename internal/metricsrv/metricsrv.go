// Package metricsrv serves a role's Prometheus metrics (and Go profiles)
// on a listener of its own: /metrics through promhttp, /debug/pprof/.
// A listener that only loopback reaches may be open; any other needs a
// bearer token (Config.Token), checked on every request.
package metricsrv

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/driftless/driftless/internal/files"
)

// Config is where a role serves its metrics.
type Config struct {
	// Listen is the address ("127.0.0.1:9100"); empty for none.
	Listen string
	// TokenFile holds the bearer token scrapers must send (mode 0600);
	// required when Listen is not loopback-only, optional otherwise.
	TokenFile string
}

// ErrOpenListener refuses a metrics address reachable from other hosts
// without a token.
var ErrOpenListener = errors.New("a metrics address that is not loopback-only needs a bearer token (--metrics-token-file)")

// IsLoopback reports whether addr ("host:port") listens on loopback only:
// a loopback IP or "localhost". An empty host (every interface) is not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Token reads cfg's token and checks cfg: "" (no token) for a loopback
// address without TokenFile; ErrOpenListener for any other address
// without one.
func (cfg Config) Token() (string, error) {
	if cfg.TokenFile == "" {
		if cfg.Listen != "" && !IsLoopback(cfg.Listen) {
			return "", fmt.Errorf("metrics address %s: %w", cfg.Listen, ErrOpenListener)
		}
		return "", nil
	}
	data, err := files.ReadPrivate(cfg.TokenFile)
	if err != nil {
		return "", fmt.Errorf("reading the metrics token: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("the metrics token file %s is empty", cfg.TokenFile)
	}
	return tok, nil
}

// NewRegistry is a registry with the Go runtime's and the process's
// collectors, for one process's roles.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves /metrics from g and the Go profiles; with a token, every
// request must carry "Authorization: Bearer <token>" (else 401).
func Handler(g prometheus.Gatherer, token string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="driftless metrics"`)
			http.Error(w, "driftless: a bearer token is needed", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Server is a metrics listener, opened by Listen and served by Serve.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen checks cfg (Token) and opens its listener; nil, nil when
// cfg.Listen is empty.
func Listen(cfg Config, g prometheus.Gatherer) (*Server, error) {
	if cfg.Listen == "" {
		return nil, nil
	}
	tok, err := cfg.Token()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics address %s: %w", cfg.Listen, err)
	}
	return &Server{ln: ln, srv: &http.Server{Handler: Handler(g, tok), ReadHeaderTimeout: 10 * time.Second}}, nil
}

// Addr is where s listens ("" for a nil s).
func (s *Server) Addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Serve serves until ctx ends; a nil s returns at once.
func (s *Server) Serve(ctx context.Context, log *slog.Logger) {
	if s == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "addr", s.Addr(), "err", err)
		}
	}()
	log.Info("serving metrics", "url", "http://"+s.Addr()+"/metrics")
	select {
	case <-ctx.Done():
	case <-done:
		return
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(sctx)
	<-done
}
