// Package proxy forwards a request to an instance of the pool its route
// matched (router/route). The instance is the one the client's sticky
// cookie (__VCAP_ID__, set when the app sets JSESSIONID) names while it is
// routable, else one chosen by the pool's balancing: round-robin, or
// least-connections (requests in flight) when the app or the router's
// default asks for it. Instances whose circuit is open (connection
// failures in a row) are passed over unless every one is. A request whose
// instance cannot be reached is tried on another, up to MaxAttempts, and
// once more on a new connection when a pooled one was stale. The proxy's
// own answers have plain-text bodies that say what happened: 404 (no
// route for the host and path), 400 (a bad Host, or a request body that
// is malformed or ended early), 408 (a request body that stalled or fell
// below the minimum rate: body.go), 502 (no instance of the app answered,
// or it sent a response the proxy cannot pass on) and 504 (the app did not
// answer in time).
//
// HTTP/1.1 is served by the fast path (fast.go: event loops on Linux,
// else a goroutine per connection); what it does not handle is handed with
// its bytes to net/http and the same Proxy (reverse.go).
package proxy

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/driftless/driftless/router/handlers"
	"github.com/driftless/driftless/router/route"
)

// MaxAttempts is how many instances a request may be tried on when the
// earlier ones refuse the connection.
const MaxAttempts = 3

// Config tunes a Proxy; zero fields take the defaults.
type Config struct {
	// DialTimeout bounds connecting to an instance (default 5 s).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for an instance's response
	// headers once the request is sent (default 60 s).
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes idle keep-alive connections to instances
	// (default 90 s).
	IdleConnTimeout time.Duration
	// TrustedProxies are the networks whose X-Forwarded-For and
	// X-Forwarded-Proto are kept (a load balancer in front); from anyone
	// else they are replaced.
	TrustedProxies []netip.Prefix
	// Circuit opens an instance's circuit after this many connection
	// failures in a row (default 3) for CircuitOpen (default 5 s).
	CircuitFailures int
	CircuitOpen     time.Duration
	// BodyTimeout bounds each read of a request body: a client whose
	// body brings no byte for that long is answered 408 (default 30 s;
	// negative: no limit). MinBodyRate is the least average rate of a
	// request body in bytes per second, counted once BodyRateGrace
	// (default 10 s) has passed since the request arrived (default 240;
	// negative: no minimum).
	BodyTimeout   time.Duration
	MinBodyRate   int64
	BodyRateGrace time.Duration
	// Waker, if set, is asked about requests that find no route or no
	// instance: it holds those to a sleeping app while the app wakes
	// (router/wake). The fast path hands such requests to net/http.
	Waker Waker
}

// Waker holds requests for apps that sleep (scaled to zero) while they
// wake.
type Waker interface {
	// Hold is called for a request whose route has no instance in the
	// table. handled is false, at once, when no sleeping app has the
	// route: the proxy answers as it would have. Otherwise Hold holds the
	// request until the app has an instance and returns that route's
	// pool, or answers the client itself (503) and returns a nil pool.
	Hold(w http.ResponseWriter, r *http.Request) (pool *route.Pool, handled bool)
}

// Defaults of the timeouts a Config leaves zero.
const (
	DefaultDialTimeout           = 5 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
)

func (c *Config) defaults() {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ResponseHeaderTimeout == 0 {
		c.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if c.CircuitFailures == 0 {
		c.CircuitFailures = 3
	}
	if c.CircuitOpen == 0 {
		c.CircuitOpen = 5 * time.Second
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.MinBodyRate == 0 {
		c.MinBodyRate = DefaultMinBodyRate
	}
	if c.BodyRateGrace == 0 {
		c.BodyRateGrace = DefaultBodyRateGrace
	}
}

// Proxy is the router's http.Handler.
type Proxy struct {
	cfg       Config
	table     *route.Current
	log       *slog.Logger
	transport *http.Transport
	// h2c reaches the instances of http2 routes (route.Endpoint.HTTP2).
	h2c      *http.Transport
	pool     *pool
	rp       *httputil.ReverseProxy
	circuits circuits
}

// NewTransport is the transport the proxy uses towards instances: keep-
// alive connections, bounded dial and header waits, no proxy from the
// environment.
func NewTransport(cfg Config) *http.Transport {
	cfg.defaults()
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          10000,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       cfg.IdleConnTimeout,
		ResponseHeaderTimeout: cfg.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
}

// New returns a proxy routing with the tables stored in table.
func New(table *route.Current, cfg Config, log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.Default()
	}
	cfg.defaults()
	p := &Proxy{cfg: cfg, table: table, log: log, transport: NewTransport(cfg), h2c: NewH2CTransport(cfg),
		pool: newPool(cfg.DialTimeout, cfg.IdleConnTimeout, perHostIdle)}
	p.circuits.failures, p.circuits.open = cfg.CircuitFailures, cfg.CircuitOpen
	p.rp = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: retryTransport{p},
		// 0: responses go out when the handler is done (one write for
		// small ones). Streaming responses (text/event-stream, or no
		// Content-Length) are flushed at every write regardless.
		FlushInterval:  0,
		ErrorHandler:   p.errorHandler,
		ModifyResponse: p.modifyResponse,
		BufferPool:     &bufferPool{},
	}
	return p
}

// ctxKey keys the routing decision in a request's context.
type ctxKey struct{}

// target is what the proxy decided for a request.
type target struct {
	pool     *route.Pool
	index    int
	endpoint route.Endpoint
	info     *handlers.Info
	// tried marks the endpoints already tried, by index (bit i; pools of
	// more than 64 endpoints mark index%64, which at worst skips one).
	tried uint64
	// attempts counts the instances tried; fresh is set when the next
	// attempt must be on a new connection.
	attempts int
	fresh    bool
	// body is the request's body on the net/http path (nil without one).
	body *bodyReader
}

// begin counts a request to endpoint i of pool as in flight (for
// least-connections) and marks i tried; end ends it. The first attempt
// also counts the request for the router's activity (route.Table.Drain).
func (t *target) begin(i int) {
	t.index, t.endpoint = i, t.pool.Endpoints[i]
	if t.attempts == 0 {
		t.pool.Sent(i)
	}
	t.pool.Start(i)
	t.tried |= 1 << (i % 64)
	t.attempts++
	if t.info != nil {
		t.info.Upstream, t.info.Instance = t.endpoint.Addr, t.endpoint.GUID
		t.info.Index, t.info.Process = t.endpoint.Index, t.endpoint.Process
	}
}

func (t *target) end() { t.pool.Done(t.index) }

// another moves t to an endpoint of its pool not tried yet whose circuit
// is closed, for a retry; false when none is left.
func (p *Proxy) another(t *target) bool {
	i, ok := t.pool.Pick(func(j int, e route.Endpoint) bool {
		return t.tried&(1<<(j%64)) != 0 || p.circuits.isOpen(e.Addr)
	})
	if !ok {
		return false
	}
	t.end()
	t.begin(i)
	return true
}

// StickyCookie is Cloud Foundry's session affinity cookie: it names the
// instance that set the app's session cookie.
const StickyCookie = "__VCAP_ID__"

// SessionCookie is the app cookie that asks for session affinity.
const SessionCookie = "JSESSIONID"

// choose picks the instance for a request: the one its sticky cookie
// names while that one is routable and its circuit closed, else one by the
// pool's algorithm among those whose circuit is closed (all of them when
// every circuit is open: better to try than to refuse).
func (p *Proxy) choose(pool *route.Pool, sticky string) (int, bool) {
	if sticky != "" {
		if i, ok := pool.Find(sticky); ok && !p.circuits.isOpen(pool.Endpoints[i].Addr) {
			return i, true
		}
	}
	if i, ok := pool.Pick(p.isOpen); ok {
		return i, true
	}
	return pool.Pick(nil)
}

// isOpen reports whether e's circuit is open.
func (p *Proxy) isOpen(_ int, e route.Endpoint) bool { return p.circuits.isOpen(e.Addr) }

// stickyFor is the Set-Cookie value of the __VCAP_ID__ cookie that pins
// a client to instance id, with the attributes of the app's session
// cookie c.
func stickyFor(c *http.Cookie, id string) string {
	sticky := &http.Cookie{Name: StickyCookie, Value: id, Path: "/", HttpOnly: true,
		Secure: c.Secure, MaxAge: c.MaxAge, Expires: c.Expires, SameSite: c.SameSite}
	return sticky.String()
}

// validHost accepts a Host header of letters, digits, '-', '.', '_', '*'
// and an optional :port or an IP literal, at most 255 bytes.
func validHost[T string | []byte](h T) bool {
	if len(h) == 0 || len(h) > 255 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == ':' || c == '[' || c == ']':
		default:
			return false
		}
	}
	return true
}

// trusted reports whether the peer at remote ("ip:port") is a trusted
// proxy.
func (p *Proxy) trusted(remote string) bool {
	if len(p.cfg.TrustedProxies) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	for _, n := range p.cfg.TrustedProxies {
		if n.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// retriable reports whether a failed attempt can be repeated elsewhere:
// the connection was refused (nothing reached the app) and the body, if
// any, can be sent again.
func retriable(req *http.Request, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	return connectFailure(err)
}

// connectFailure reports whether err means nothing reached the instance.
func connectFailure(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

func (p *Proxy) noInstance(w http.ResponseWriter, pool *route.Pool) {
	plain(w, http.StatusBadGateway, noInstanceBody(pool.App))
}

// retry decides after a failed attempt at t on the fast path: once more
// on a new connection when a pooled one turned out stale and the request
// can be sent again (resendable), another instance when this one could
// not be reached (its circuit counts the failure). Otherwise it logs the
// failure and returns the status and body of the client's answer.
func (p *Proxy) retry(t *target, err error, resendable bool) (again bool, status int, body string) {
	switch {
	case errors.Is(err, errStale) && resendable && !t.fresh:
		t.fresh = true // the instance closed an idle connection: once more on a new one
		return true, 0, ""
	case connectFailure(err):
		p.circuits.failure(t.endpoint.Addr)
		if t.attempts < MaxAttempts && p.another(t) {
			t.fresh = false
			p.log.Debug("instance unreachable, trying another", "addr", t.endpoint.Addr, "app", t.pool.App, "err", err)
			return true, 0, ""
		}
	}
	p.log.Warn("no instance answered", "app", t.pool.App, "route", t.pool.Route, "err", err)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return false, http.StatusGatewayTimeout, timeoutBody(t.pool.App)
	}
	return false, http.StatusBadGateway, noInstanceBody(t.pool.App)
}

// noInstanceBody is the 502 body when no instance of app answered.
func noInstanceBody(app string) string {
	return "driftless: no healthy instance of " + app + " answered\n"
}

// timeoutBody is the 504 body when app's instance did not answer in time.
func timeoutBody(app string) string { return "driftless: " + app + " did not answer in time\n" }

// badResponseBody is the 502 body when app's instance sent a response the
// proxy cannot parse or pass on.
func badResponseBody(app string) string { return "driftless: " + app + " sent a bad response\n" }

// unsupportedCodingBody is the 502 body when app's instance sent a
// transfer encoding other than chunked.
func unsupportedCodingBody(app string) string {
	return "driftless: " + app + " sent an unsupported transfer encoding\n"
}

// Close closes the idle connections to instances and stops the reaping
// of the fast path's.
func (p *Proxy) Close() {
	p.transport.CloseIdleConnections()
	p.h2c.CloseIdleConnections()
	p.pool.close()
}

func plain(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// bufferPool recycles the proxy's copy buffers.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32*1024)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
