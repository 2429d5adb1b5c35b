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
	"sync"
	"syscall"
	"time"

	"github.com/driftless/driftless/router/handlers"
	"github.com/driftless/driftless/router/route"
)

// MaxAttempts is how many instances a request may be tried on when the
// earlier ones refuse the connection.
const MaxAttempts = 3

// Proxy is the router's http.Handler.
type Proxy struct {
	table     *route.Current
	log       *slog.Logger
	transport *http.Transport
	rp        *httputil.ReverseProxy
}

// NewTransport is the transport the proxy uses towards instances: keep-
// alive connections, bounded dial and header waits, no proxy from the
// environment.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          10000,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     false,
	}
}

// New returns a proxy routing with the tables stored in table.
func New(table *route.Current, log *slog.Logger) *Proxy {
	if log == nil {
		log = slog.Default()
	}
	p := &Proxy{table: table, log: log, transport: NewTransport()}
	p.rp = &httputil.ReverseProxy{
		Rewrite:       p.rewrite,
		Transport:     retryTransport{p},
		FlushInterval: -1,
		ErrorHandler:  p.errorHandler,
		BufferPool:    &bufferPool{},
	}
	return p
}

// ctxKey keys the routing decision in a request's context.
type ctxKey struct{}

// target is what the proxy decided for a request.
type target struct {
	pool     *route.Pool
	endpoint route.Endpoint
	info     *handlers.Info
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := handlers.InfoFrom(r.Context())
	pool := p.table.Load().Lookup(r.Host, r.URL.Path)
	if pool == nil {
		plain(w, http.StatusNotFound, fmt.Sprintf("driftless: no app is routed at %s%s\n", route.NormalizeHost(r.Host), r.URL.Path))
		return
	}
	if info != nil {
		info.App = pool.App
	}
	ep, ok := pool.Next()
	if !ok {
		p.noInstance(w, pool)
		return
	}
	t := &target{pool: pool, endpoint: ep, info: info}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, t)))
}

// rewrite points the outgoing request at the chosen endpoint and sets the
// X-Forwarded-* headers.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	t := pr.In.Context().Value(ctxKey{}).(*target)
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = t.endpoint.Addr
	pr.Out.Host = pr.In.Host // apps see the Host the client asked for
	// X-Forwarded-For: append the client to what came in (SetXForwarded
	// would replace it).
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = append([]string(nil), prior...)
	}
	pr.SetXForwarded()
	if proto := pr.In.Header.Get("X-Forwarded-Proto"); proto == "http" || proto == "https" {
		pr.Out.Header.Set("X-Forwarded-Proto", proto) // a TLS terminator in front said so
	}
	if id := handlers.RequestID(pr.In.Context()); id != "" {
		pr.Out.Header.Set(handlers.RequestIDHeader, id)
	}
	// X-Forwarded-Prefix etc. are left to the client; hop-by-hop headers
	// are removed by ReverseProxy.
}

// retryTransport sends the request and, when the endpoint refuses the
// connection before anything was sent, tries the pool's next endpoints.
type retryTransport struct{ p *Proxy }

func (rt retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t := req.Context().Value(ctxKey{}).(*target)
	var err error
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		if attempt > 0 {
			next, ok := t.pool.Next()
			if !ok || len(t.pool.Endpoints) <= attempt {
				break
			}
			t.endpoint = next
			req.URL.Host = next.Addr
		}
		if t.info != nil {
			t.info.Upstream = t.endpoint.Addr
		}
		var resp *http.Response
		resp, err = rt.p.transport.RoundTrip(req)
		if err == nil {
			return resp, nil
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
