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
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RequestIDHeader carries a request's id to the app and back to the client.
const RequestIDHeader = "X-Request-Id"

// Info is what the handlers learn about a request as it passes: the
// proxy fills App and Upstream, the access log prints them.
type Info struct {
	ID string
	// Space and App name the routed app.
	Space, App string
	Route      string
	// Upstream and Instance are the instance that answered (the last one
	// tried); UpstreamTime how long it took to answer with headers.
	Upstream     string
	Instance     string
	UpstreamTime time.Duration
	// Index and Process are the answering instance's index and process
	// type ("" for web), for the app's RTR line.
	Index   int
	Process string
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
func NewRequestID() string { return string(AppendRequestID(nil)) }

// AppendRequestID appends a new request id (see NewRequestID) to dst.
func AppendRequestID(dst []byte) []byte {
	n := idCounter.Add(1)
	var b [16]byte
	copy(b[:8], idPrefix[:])
	binary.BigEndian.PutUint64(b[8:], n)
	return hex.AppendEncode(dst, b[:])
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

	// The children of Requests (by route and class) and Latency (by
	// class), looked up once rather than hashed on every request.
	requests sync.Map // routeClass → prometheus.Counter
	latency  sync.Map // class → prometheus.Observer
}

// routeClass keys a child of Requests.
type routeClass struct {
	route string
	class int
}

// observe counts a request to route with status class c and its time.
func (m *Metrics) observe(route string, c int, d time.Duration) {
	child(&m.requests, routeClass{route, c}, func() prometheus.Counter {
		return m.Requests.WithLabelValues(route, statusClasses[c])
	}).Inc()
	child(&m.latency, c, func() prometheus.Observer { return m.Latency.WithLabelValues(statusClasses[c]) }).Observe(d.Seconds())
}

// child returns the metric stored in children under key, made and stored
// by mk the first time.
func child[K comparable, V any](children *sync.Map, key K, mk func() V) V {
	if v, ok := children.Load(key); ok {
		return v.(V)
	}
	v, _ := children.LoadOrStore(key, mk())
	return v.(V)
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

// Config is what Wrap and NewObserver need.
type Config struct {
	// AccessLog receives one line per request; nil for none.
	AccessLog io.Writer
	// AppLog receives the line of each request routed to an app, which
	// goes into the app's log as an RTR line (AppLogger); nil for none.
	AppLog AppLogger
	// Metrics, if set, counts requests.
	Metrics *Metrics
	Log     *slog.Logger
}

// Exchange is one request and its response as the access log and the
// metrics see them. The request's strings are needed only when the
// observer logs (Observer.Logs).
type Exchange struct {
	// Start is when the request arrived; End when the response was
	// sent (zero: when Observe is called).
	Start, End time.Time
	// Remote is the client's address ("ip:port" or "ip").
	Remote             string
	Method, URI, Proto string
	Referer, UserAgent string
	Status             int
	Bytes              int64
	Info               *Info
}

// Observer records exchanges: metrics, and the access log line.
type Observer struct {
	cfg Config
	mu  sync.Mutex // one access log line at a time
}

// NewObserver returns an observer writing to cfg's access log and metrics.
func NewObserver(cfg Config) *Observer {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Observer{cfg: cfg}
}

// Logs reports whether Observe writes access log lines (and so needs the
// exchange's request strings).
func (o *Observer) Logs() bool { return o.cfg.AccessLog != nil || o.cfg.AppLog != nil }

// statusClasses are the metrics' code labels, by status/100.
var statusClasses = [...]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Observe counts the exchange and writes its access log line.
func (o *Observer) Observe(x *Exchange) {
	if x.End.IsZero() {
		x.End = time.Now()
	}
	d := x.End.Sub(x.Start)
	class := 5
	if c := x.Status / 100; c >= 0 && c < len(statusClasses) {
		class = c
	}
	info := x.Info
	if m := o.cfg.Metrics; m != nil {
		m.observe(info.Route, class, d)
		if info.Upstream != "" {
			m.Upstream.Observe(info.UpstreamTime.Seconds())
		}
	}
	if !o.Logs() {
		return
	}
	// Combined log format, then driftless's fields.
	line := fmt.Sprintf("%s - - [%s] %q %d %d %q %q route=%q app=%q instance=%q upstream=%q upstream_ms=%.3f duration_ms=%.3f request_id=%s",
		ClientIP(x.Remote), x.Start.UTC().Format("02/Jan/2006:15:04:05 -0700"),
		x.Method+" "+x.URI+" "+x.Proto, x.Status, x.Bytes, x.Referer, x.UserAgent,
		info.Route, info.App, info.Instance, info.Upstream, float64(info.UpstreamTime.Microseconds())/1000,
		float64(d.Microseconds())/1000, info.ID)
	if o.cfg.AccessLog != nil {
		o.mu.Lock()
		_, _ = io.WriteString(o.cfg.AccessLog, line+"\n")
		o.mu.Unlock()
	}
	if o.cfg.AppLog != nil && info.App != "" {
		o.cfg.AppLog.AppLine(info, x.Start, line)
	}
}

// ValidRequestID reports whether an incoming request id may be kept:
// 8 to 128 of letters, digits and "._:-".
func ValidRequestID[T string | []byte](id T) bool {
	if len(id) < 8 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// maxLoggedID bounds what of a rejected request id is logged.
const maxLoggedID = 32

// LogRejectedID notes at debug level that the request id a client sent
// was not kept (too short, too long, or characters other than
// ValidRequestID's) and id replaced it. Of the rejected value only its
// length and, quoted, its first 32 bytes are logged.
func LogRejectedID[T string | []byte](log *slog.Logger, remote string, rejected T, id []byte) {
	if !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	log.Debug("request id replaced", "remote", remote, "len", len(rejected),
		"prefix", fmt.Sprintf("%q", rejected[:min(len(rejected), maxLoggedID)]), "request_id", string(id))
}

// Wrap puts the middleware around next: request id, recovery, and obs
// for the access log and metrics.
func Wrap(next http.Handler, obs *Observer) http.Handler {
	log := obs.cfg.Log
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(RequestIDHeader)
		if !ValidRequestID(id) {
			rejected := id
			id = NewRequestID()
			if rejected != "" {
				LogRejectedID(log, r.RemoteAddr, rejected, []byte(id))
			}
		}
		info := &Info{ID: id}
		w.Header().Set(RequestIDHeader, id)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "host", r.Host, "path", r.URL.Path, "panic", v)
				if !rec.wrote {
					http.Error(rec, "driftless: internal error", http.StatusInternalServerError)
				}
			}
			x := Exchange{Start: start, Remote: r.RemoteAddr, Status: rec.status, Bytes: rec.bytes, Info: info}
			if obs.Logs() {
				x.Method, x.URI, x.Proto = r.Method, r.URL.RequestURI(), r.Proto
				x.Referer, x.UserAgent = r.Referer(), r.UserAgent()
			}
			obs.Observe(&x)
		}()
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, info)))
	})
}

// ClientIP is the IP of an "ip:port" address (the address itself when it
// has no port).
func ClientIP(remote string) string {
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
