package proxy

// The HTTP/2 streams the fast path does not forward itself (h2forward.go
// route: no route, a route to h2c instances, CONNECT, a bad :authority,
// a head over the size limit) are served by the Fallback's handler — the
// Proxy in the router's handlers, as net/http would serve them — through
// an http.ResponseWriter that writes the stream's frames.

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"
)

// serveHandler serves the stream's request with the Fallback's handler.
func (st *h2stream) serveHandler() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st.mu.Lock()
	canceled := st.canceled
	st.ctxCancel = cancel
	st.mu.Unlock()
	if canceled {
		return
	}
	if st.truncated {
		_ = st.answer(http.StatusRequestHeaderFieldsTooLarge, "driftless: request header fields too large\n")
		return
	}
	req, ok := st.httpRequest(ctx)
	if !ok {
		_ = st.answer(http.StatusBadRequest, "driftless: bad request\n")
		return
	}
	w := &h2rw{st: st, header: http.Header{}}
	w.reqb, _ = req.Body.(*h2reqBody)
	st.s.Fallback.Handler.ServeHTTP(w, req)
	w.finish()
}

// httpRequest is the stream's request as net/http's HTTP/2 server makes
// it.
func (st *h2stream) httpRequest(ctx context.Context) (*http.Request, bool) {
	u := &url.URL{Host: st.authority}
	if st.method != http.MethodConnect {
		var err error
		if u, err = url.ParseRequestURI(st.path); err != nil {
			return nil, false
		}
	}
	header := make(http.Header, len(st.fields))
	var cookies []string
	for _, f := range st.fields {
		switch f.Name {
		case "host":
			continue
		case "cookie":
			cookies = append(cookies, f.Value)
			continue
		}
		k := http.CanonicalHeaderKey(f.Name)
		header[k] = append(header[k], f.Value)
	}
	if len(cookies) > 0 {
		header.Set("Cookie", strings.Join(cookies, "; "))
	}
	r := &http.Request{Method: st.method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: header,
		Host: st.authority, RemoteAddr: st.remote, RequestURI: st.path, TLS: st.h.tlsState(), Body: http.NoBody}
	if !st.noBody {
		r.ContentLength = st.body.declared
		b := &h2reqBody{st: st}
		if vs := header.Values("Trailer"); len(vs) > 0 {
			r.Trailer = http.Header{}
			for _, v := range vs {
				for _, k := range strings.Split(v, ",") {
					if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
						r.Trailer[k] = nil
					}
				}
			}
			b.trailer = r.Trailer
		}
		r.Body = b
	}
	return r.WithContext(ctx), true
}

// tlsState is the connection's TLS state, nil on cleartext.
func (h *h2conn) tlsState() *tls.ConnectionState {
	if tc, ok := h.c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	return nil
}

// h2reqBody is a handler's request body: the stream's, read until the
// read deadline the handler sets (http.ResponseController).
type h2reqBody struct {
	st       *h2stream
	deadline atomic.Int64 // Unix nanoseconds, 0: none
	trailer  http.Header
}

func (b *h2reqBody) Read(p []byte) (int, error) {
	var d time.Time
	if ns := b.deadline.Load(); ns != 0 {
		d = time.Unix(0, ns)
	}
	n, err := b.st.body.read(p, d)
	if n > 0 {
		if rerr := b.st.refund(); rerr != nil {
			return n, rerr
		}
	}
	if b.trailer != nil && errors.Is(err, io.EOF) {
		b.st.body.mu.Lock()
		for _, f := range b.st.body.trailer {
			k := http.CanonicalHeaderKey(f.Name)
			if _, declared := b.trailer[k]; declared {
				b.trailer[k] = append(b.trailer[k], f.Value)
			}
		}
		b.st.body.mu.Unlock()
	}
	return n, err
}

// Close stops the body: what the client still sends is not read.
func (b *h2reqBody) Close() error {
	b.st.body.mu.Lock()
	b.st.body.done = true
	b.st.body.mu.Unlock()
	return nil
}

// h2rw is the handler's http.ResponseWriter: the head goes out with the
// first write (or at the end), the body as DATA frames, trailers as the
// last HEADERS.
type h2rw struct {
	st     *h2stream
	header http.Header
	// status is the final status once WriteHeader was called; sent once
	// its HEADERS went out.
	status int
	sent   bool
	reqb   *h2reqBody
}

func (w *h2rw) Header() http.Header { return w.header }

func (w *h2rw) WriteHeader(code int) {
	if w.status != 0 || code < 100 || code > 999 {
		return
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			_ = w.st.writeHeaders(w.fields(code, false), false)
			_ = w.st.flush()
		}
		return
	}
	w.status = code
}

// fields are the head's fields with status code (trailer fields left
// out when final).
func (w *h2rw) fields(code int, final bool) []hpack.HeaderField {
	fs := []hpack.HeaderField{{Name: ":status", Value: strconv.Itoa(code)}}
	for k, vs := range w.header {
		if final && strings.HasPrefix(k, http.TrailerPrefix) || connectionSpecific(k) {
			continue
		}
		name := strings.ToLower(k)
		for _, v := range vs {
			fs = append(fs, hpack.HeaderField{Name: name, Value: v, Sensitive: true})
		}
	}
	return fs
}

// connectionSpecific reports whether header k may not be sent over
// HTTP/2 (RFC 9113, 8.2.2).
func connectionSpecific(k string) bool {
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// sendHead sends the response's HEADERS, the stream's last when end.
func (w *h2rw) sendHead(end bool) error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.sent = true
	w.st.headersSent = true
	return w.st.writeHeaders(w.fields(w.status, true), end)
}

func (w *h2rw) Write(p []byte) (int, error) {
	if !w.sent {
		if w.status == 0 && w.header.Get("Content-Type") == "" && len(p) > 0 {
			w.header.Set("Content-Type", http.DetectContentType(p))
		}
		if err := w.sendHead(false); err != nil {
			return 0, err
		}
	}
	if err := w.st.writeData(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush sends what was written.
func (w *h2rw) Flush() {
	if !w.sent {
		_ = w.sendHead(false)
	}
	_ = w.st.flush()
}

// SetReadDeadline bounds the reads of the request body.
func (w *h2rw) SetReadDeadline(t time.Time) error {
	if b, ok := w.reqBody(); ok {
		var ns int64
		if !t.IsZero() {
			ns = t.UnixNano()
		}
		b.deadline.Store(ns)
	}
	return nil
}

// SetWriteDeadline is accepted; the connection's writes have theirs, and
// a wait for the client's window is bounded by IdleTimeout (waitWindow).
func (w *h2rw) SetWriteDeadline(time.Time) error { return nil }

func (w *h2rw) reqBody() (*h2reqBody, bool) { return w.reqb, w.reqb != nil }

// finish ends the response: the head if nothing was written, the
// trailers, END_STREAM.
func (w *h2rw) finish() {
	var trailers []hpack.HeaderField
	for _, k := range w.header.Values("Trailer") {
		for _, name := range strings.Split(k, ",") {
			name = http.CanonicalHeaderKey(strings.TrimSpace(name))
			for _, v := range w.header[name] {
				trailers = append(trailers, hpack.HeaderField{Name: strings.ToLower(name), Value: v, Sensitive: true})
			}
		}
	}
	for k, vs := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			for _, v := range vs {
				trailers = append(trailers, hpack.HeaderField{Name: strings.ToLower(name), Value: v, Sensitive: true})
			}
		}
	}
	switch {
	case !w.sent && len(trailers) == 0:
		_ = w.sendHead(true)
	case !w.sent:
		_ = w.sendHead(false)
		fallthrough
	case len(trailers) > 0:
		_ = w.st.writeHeaders(trailers, true)
	default:
		_ = w.st.writeData(nil, true)
	}
	_ = w.st.flush()
}
