// Package handlers holds the router's middleware: request ids, the access
// log, panic recovery and metrics. Each wraps the next http.Handler.
package handlers

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RequestIDHeader carries a request's id to the app and back to the client.
const RequestIDHeader = "X-Request-Id"

// validID is what an incoming request id must look like to be kept.
var validID = regexp.MustCompile(`^[A-Za-z0-9._:-]{8,128}$`)

// Info is what the handlers learn about a request as it passes: the
// proxy fills App and Upstream, the access log prints them.
type Info struct {
	ID    string
	App   string
	Route string
	// Upstream and Instance are the instance that answered (the last one
	// tried); UpstreamTime how long it took to answer with headers.
	Upstream     string
	Instance     string
	UpstreamTime time.Duration
}

type infoKey struct{}

// InfoFrom returns the request's Info, nil outside the handlers.
func InfoFrom(ctx context.Context) *Info {
	i, _ := ctx.Value(infoKey{}).(*Info)
	return i
}

// RequestID returns the request's id, "" outside the handlers.
func RequestID(ctx context.Context) string {
	if i := InfoFrom(ctx); i != nil {
		return i.ID
	}
	return ""
}

// NewRequestID returns a request id unique to this process's lifetime: a
// random 64-bit prefix drawn once and a counter, in hex (no system call
// per request).
func NewRequestID() string {
	n := idCounter.Add(1)
	var b [16]byte
	copy(b[:8], idPrefix[:])
	binary.BigEndian.PutUint64(b[8:], n)
	return hex.EncodeToString(b[:])
}

var (
	idPrefix  = func() (p [8]byte) { _, _ = rand.Read(p[:]); return p }()
	idCounter atomic.Uint64
)

// Metrics are the router's Prometheus metrics.
type Metrics struct {
	// Requests counts requests by route ("" when none matched) and
	// status class.
	Requests *prometheus.CounterVec
	// Latency is the time to the last byte, by status class.
	Latency *prometheus.HistogramVec
	// Upstream is the time instances take to answer with headers.
	Upstream prometheus.Histogram
}

// NewMetrics registers the router's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "driftless_router_requests_total", Help: "Requests by route and status class.",
		}, []string{"route", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "driftless_router_request_duration_seconds", Help: "Time to the last byte of the response.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"code"}),
		Upstream: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "driftless_router_upstream_duration_seconds", Help: "Time instances take to answer with headers.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
	}
	reg.MustRegister(m.Requests, m.Latency, m.Upstream)
	return m
}

// Config is what Wrap needs.
type Config struct {
	// AccessLog receives one line per request; nil for none.
	AccessLog io.Writer
	// Metrics, if set, counts requests.
	Metrics *Metrics
	Log     *slog.Logger
}

// Wrap puts the middleware around next: request id, recovery, access log
// and metrics.
func Wrap(next http.Handler, cfg Config) http.Handler {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !validID.MatchString(id) {
			id = NewRequestID()
		}
		info := &Info{ID: id}
		w.Header().Set(RequestIDHeader, id)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				cfg.Log.Error("panic serving request", "host", r.Host, "path", r.URL.Path, "panic", v)
				if !rec.wrote {
					http.Error(rec, "driftless: internal error", http.StatusInternalServerError)
				}
			}
			d := time.Since(start)
			class := strconv.Itoa(rec.status/100) + "xx"
			if cfg.Metrics != nil {
				cfg.Metrics.Requests.WithLabelValues(info.Route, class).Inc()
				cfg.Metrics.Latency.WithLabelValues(class).Observe(d.Seconds())
				if info.Upstream != "" {
					cfg.Metrics.Upstream.Observe(info.UpstreamTime.Seconds())
				}
			}
			if cfg.AccessLog != nil {
				// Combined log format, then driftless's fields.
				line := fmt.Sprintf("%s - - [%s] %q %d %d %q %q route=%q app=%q instance=%q upstream=%q upstream_ms=%.3f duration_ms=%.3f request_id=%s\n",
					clientIP(r.RemoteAddr), start.UTC().Format("02/Jan/2006:15:04:05 -0700"),
					r.Method+" "+r.URL.RequestURI()+" "+r.Proto, rec.status, rec.bytes, r.Referer(), r.UserAgent(),
					info.Route, info.App, info.Instance, info.Upstream, float64(info.UpstreamTime.Microseconds())/1000,
					float64(d.Microseconds())/1000, id)
				mu.Lock()
				_, _ = io.WriteString(cfg.AccessLog, line)
				mu.Unlock()
			}
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
	})
}

func clientIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// recorder notes the status and size of a response. It passes Flush and
// Hijack through for streaming and websockets.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush sends buffered data to the client.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack hands the connection over (websocket upgrades).
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	r.status, r.wrote = http.StatusSwitchingProtocols, true
	return h.Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
