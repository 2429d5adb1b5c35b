package proxy

// The net/http side of the proxy: HTTPS (HTTP/2 and HTTP/1.1 over TLS)
// and the connections the HTTP/1.1 fast path hands over (upgrades,
// chunked uploads, Expect, HTTP/1.0, unknown routes, malformed heads).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httputil"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/handlers"
	"github.com/driftless/driftless/router/route"
)

// ServeHTTP proxies a request that came through net/http.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := handlers.InfoFrom(r.Context())
	if !validHost(r.Host) {
		plain(w, http.StatusBadRequest, "driftless: bad Host header\n")
		return
	}
	pool := p.table.Load().Lookup(r.Host, r.URL.Path)
	if pool == nil {
		var handled bool
		if pool, handled = p.hold(w, r); !handled {
			plain(w, http.StatusNotFound, fmt.Sprintf("driftless: no app is routed at %s%s\n", model.NormalizeHost(r.Host), r.URL.Path))
		}
		if pool == nil {
			return
		}
	}
	if info != nil {
		info.Space, info.App = pool.Space, pool.App
		info.Route = pool.Route
	}
	i, ok := p.choose(pool, stickyCookie(r))
	if !ok {
		held, handled := p.hold(w, r)
		if !handled {
			p.noInstance(w, pool)
			return
		}
		if held == nil {
			return
		}
		if i, ok = p.choose(held, stickyCookie(r)); !ok {
			p.noInstance(w, held)
			return
		}
		pool = held
	}
	t := &target{pool: pool, info: info}
	t.begin(i)
	defer t.end()
	if r.Body != nil && r.Body != http.NoBody {
		t.body = p.newBodyReader(w, r)
		r.Body = t.body
	}
	p.rp.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, t)))
}

// hold asks the Waker, if any, about a request with no route or no
// instance (see Waker.Hold).
func (p *Proxy) hold(w http.ResponseWriter, r *http.Request) (*route.Pool, bool) {
	if p.cfg.Waker == nil {
		return nil, false
	}
	return p.cfg.Waker.Hold(w, r)
}

// stickyCookie is the request's __VCAP_ID__ cookie, "" when none.
func stickyCookie(r *http.Request) string {
	if c, err := r.Cookie(StickyCookie); err == nil {
		return c.Value
	}
	return ""
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
		resp.Header.Add("Set-Cookie", stickyFor(c, t.endpoint.GUID))
		break
	}
	return nil
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

// retryTransport sends the request and, when the endpoint refuses the
// connection before anything was sent, tries the pool's next endpoints.
type retryTransport struct{ p *Proxy }

func (rt retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t := req.Context().Value(ctxKey{}).(*target)
	var err error
	for attempt := 0; attempt < MaxAttempts; attempt++ {
		if attempt > 0 {
			if !rt.p.another(t) {
				break
			}
			req.URL.Host = t.endpoint.Addr
		}
		var resp *http.Response
		start := time.Now()
		resp, err = rt.p.transportTo(t.endpoint).RoundTrip(req)
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

func (p *Proxy) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	t, _ := r.Context().Value(ctxKey{}).(*target)
	if t != nil && t.body != nil {
		// The client's body failed (the transport closed the instance's
		// connection before the body's end): the answer is the client's.
		// A read timeout also cancels the request's context: this comes
		// first.
		if status, body, ok := bodyAnswer(t.body.failure()); ok {
			p.log.Debug("request body failed", "remote", r.RemoteAddr, "app", t.pool.App, "status", status, "err", err)
			if r.ProtoMajor == 1 {
				w.Header().Set("Connection", "close")
			}
			plain(w, status, body)
			return
		}
	}
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
