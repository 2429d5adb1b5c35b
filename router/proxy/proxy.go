// Package proxy forwards a request to an instance of the pool its route
// matched: it picks endpoints round-robin, retries another instance when
// one cannot be reached, and answers 404 and 502 with clear bodies.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
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
}

func (c *Config) defaults() {
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.ResponseHeaderTimeout == 0 {
		c.ResponseHeaderTimeout = 60 * time.Second
	}
	if c.IdleConnTimeout == 0 {
		c.IdleConnTimeout = 90 * time.Second
	}
	if c.CircuitFailures == 0 {
		c.CircuitFailures = 3
	}
	if c.CircuitOpen == 0 {
		c.CircuitOpen = 5 * time.Second
	}
}

// Proxy is the router's http.Handler.
type Proxy struct {
	cfg       Config
	table     *route.Current
	log       *slog.Logger
	transport *http.Transport
	rp        *httputil.ReverseProxy
	circuits  circuits
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
	p := &Proxy{cfg: cfg, table: table, log: log, transport: NewTransport(cfg)}
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
	// tried marks the endpoints already tried (by index).
	tried map[int]bool
}

// StickyCookie is Cloud Foundry's session affinity cookie: it names the
// instance that set the app's session cookie.
const StickyCookie = "__VCAP_ID__"

// SessionCookie is the app cookie that asks for session affinity.
const SessionCookie = "JSESSIONID"

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := handlers.InfoFrom(r.Context())
	if !validHost(r.Host) {
		plain(w, http.StatusBadRequest, "driftless: bad Host header\n")
		return
	}
	pool := p.table.Load().Lookup(r.Host, r.URL.Path)
	if pool == nil {
		plain(w, http.StatusNotFound, fmt.Sprintf("driftless: no app is routed at %s%s\n", route.NormalizeHost(r.Host), r.URL.Path))
		return
	}
	if info != nil {
		info.App = pool.App
		info.Route = pool.Route
	}
	i, ok := p.choose(pool, r)
	if !ok {
		p.noInstance(w, pool)
		return
	}
	t := &target{pool: pool, index: i, endpoint: pool.Endpoints[i], info: info, tried: map[int]bool{}}
	pool.Start(i)
	defer func() { pool.Done(t.index) }()
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, t)))
}

// choose picks the instance for a request: the one its sticky cookie
// names while that one is routable and its circuit closed, else one by the
// pool's algorithm among those whose circuit is closed (all of them when
// every circuit is open: better to try than to refuse).
func (p *Proxy) choose(pool *route.Pool, r *http.Request) (int, bool) {
	if c, err := r.Cookie(StickyCookie); err == nil {
		if i, ok := pool.Find(c.Value); ok && !p.circuits.isOpen(pool.Endpoints[i].Addr) {
			return i, true
		}
	}
	if i, ok := pool.Pick(func(e route.Endpoint) bool { return p.circuits.isOpen(e.Addr) }); ok {
		return i, true
	}
	return pool.Pick(nil)
}

// modifyResponse adds the sticky cookie when the app starts a session.
func (p *Proxy) modifyResponse(resp *http.Response) error {
	t, _ := resp.Request.Context().Value(ctxKey{}).(*target)
	if t == nil {
		return nil
	}
	for _, c := range resp.Cookies() {
		if c.Name != SessionCookie {
			continue
		}
		sticky := &http.Cookie{Name: StickyCookie, Value: t.endpoint.ID, Path: "/", HttpOnly: true,
			Secure: c.Secure, MaxAge: c.MaxAge, Expires: c.Expires, SameSite: c.SameSite}
		resp.Header.Add("Set-Cookie", sticky.String())
		break
	}
	return nil
}

// validHost accepts a Host header of letters, digits, '-', '.', '_', '*'
// and an optional :port or an IP literal, at most 255 bytes.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
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

// rewrite points the outgoing request at the chosen endpoint and sets the
// X-Forwarded-* headers: those that came in are kept only from trusted
// proxies.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(ctxKey{}).(*target)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = t.endpoint.Addr
	pr.Out.Host = pr.In.Host // apps see the Host the client asked for
	trusted := p.trusted(pr.In.RemoteAddr)
	if prior := pr.In.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = append([]string(nil), prior...)
	}
	pr.SetXForwarded()
	if proto := pr.In.Header.Get("X-Forwarded-Proto"); trusted && (proto == "http" || proto == "https") {
		pr.Out.Header.Set("X-Forwarded-Proto", proto) // a TLS terminator in front said so
	}
	if id := handlers.RequestID(pr.In.Context()); id != "" {
		pr.Out.Header.Set(handlers.RequestIDHeader, id)
	}
	// Hop-by-hop headers are removed by ReverseProxy.
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

// retryTransport sends the request and, when the endpoint refuses the
// connection before anything was sent, tries the pool's next endpoints.
type retryTransport struct{ p *Proxy }

func (rt retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t := req.Context().Value(ctxKey{}).(*target)
	var err error
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		if attempt > 0 {
			i, ok := t.pool.Pick(func(e route.Endpoint) bool {
				j, _ := t.pool.Find(e.ID)
				return t.tried[j] || rt.p.circuits.isOpen(e.Addr)
			})
			if !ok {
				break
			}
			t.pool.Done(t.index)
			t.pool.Start(i)
			t.index, t.endpoint = i, t.pool.Endpoints[i]
			req.URL.Host = t.endpoint.Addr
		}
		t.tried[t.index] = true
		if t.info != nil {
			t.info.Upstream, t.info.Instance = t.endpoint.Addr, t.endpoint.ID
		}
		var resp *http.Response
		start := time.Now()
		resp, err = rt.p.transport.RoundTrip(req)
		if t.info != nil {
			t.info.UpstreamTime = time.Since(start)
		}
		if err == nil {
			rt.p.circuits.success(t.endpoint.Addr)
			return resp, nil
		}
		if connectFailure(err) {
			rt.p.circuits.failure(t.endpoint.Addr)
		}
		if !retriable(req, err) {
			return nil, err
		}
		rt.p.log.Debug("instance unreachable, trying another", "addr", t.endpoint.Addr, "app", t.pool.App, "err", err)
	}
	return nil, err
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

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	t, _ := r.Context().Value(ctxKey{}).(*target)
	if errors.Is(err, context.Canceled) {
		w.WriteHeader(499) // client went away; nginx's convention
		return
	}
	app := "?"
	if t != nil {
		app = t.pool.App
	}
	p.log.Warn("no instance answered", "app", app, "host", r.Host, "err", err)
	if t != nil {
		p.noInstance(w, t.pool)
		return
	}
	plain(w, http.StatusBadGateway, "driftless: bad gateway\n")
}

func (p *Proxy) noInstance(w http.ResponseWriter, pool *route.Pool) {
	plain(w, http.StatusBadGateway, fmt.Sprintf("driftless: no healthy instance of %s answered\n", pool.App))
}

// CloseIdle closes the idle connections to instances.
func (p *Proxy) CloseIdle() { p.transport.CloseIdleConnections() }

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
