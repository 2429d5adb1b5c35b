package proxy

// Request bodies a client sends slowly, stops sending or frames badly, on
// both paths. Each read of a body must bring bytes within BodyTimeout,
// and after BodyRateGrace the body must keep MinBodyRate on average
// (bodyDeadline): a stalled or trickling body is answered 408 and both
// connections are closed, as nginx's client_body_timeout and Kestrel's
// minimum request body data rate do. A body that ends early or is
// malformed (a bad chunk size line, a missing CRLF, a cut before the last
// chunk) is answered 400, and the instance's connection is closed before
// the body's end was sent: the app reads an error (a short body, a chunked
// body without its last chunk), never a complete request.

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"
)

// Defaults of the request body limits a Config leaves zero.
const (
	DefaultBodyTimeout   = 30 * time.Second
	DefaultMinBodyRate   = 240 // bytes per second, Kestrel's default
	DefaultBodyRateGrace = 10 * time.Second
)

// errBodyTimeout is a request body that stalled or fell below the
// minimum rate; errBadBody one that ended early or was malformed.
var (
	errBodyTimeout = errors.New("request body stalled")
	errBadBody     = errors.New("request body ended early or is malformed")
)

// The proxy's answers to a bad request body.
const (
	bodyTimeoutAnswer = "driftless: the request body did not arrive in time\n"
	badBodyAnswer     = "driftless: the request body ended early or is malformed\n"
)

// bodyDeadline is when the next read of a request body that started at
// start and of which got bytes arrived must have brought bytes: within
// BodyTimeout of now, and before the body's average rate since start
// falls below MinBodyRate (counted after BodyRateGrace). Zero: neither
// limit is on.
func (c *Config) bodyDeadline(start, now time.Time, got int64) time.Time {
	var d time.Time
	if c.BodyTimeout > 0 {
		d = now.Add(c.BodyTimeout)
	}
	// (A body so large its allowance overflows a Duration earned more
	// than any timeout.)
	if earned := float64(got) / float64(c.MinBodyRate); c.MinBodyRate > 0 && earned < 4e9 { // 4e9 s: 126 years
		r := start.Add(c.BodyRateGrace + time.Duration(earned*float64(time.Second)))
		if d.IsZero() || r.Before(d) {
			d = r
		}
	}
	return d
}

// bodyError classifies a client's failure to deliver its request body:
// errBodyTimeout when a deadline passed, else errBadBody (the body ended
// early, was cut or malformed), joined with err.
func bodyError(err error) error {
	var ne net.Error
	if errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return errors.Join(errBodyTimeout, err)
	}
	return errors.Join(errBadBody, err)
}

// bodyAnswer is the status and body the proxy answers a request whose
// body failed with err (classified by bodyError); ok is false when err
// is not a body failure.
func bodyAnswer(err error) (status int, body string, ok bool) {
	switch {
	case errors.Is(err, errBodyTimeout):
		return http.StatusRequestTimeout, bodyTimeoutAnswer, true
	case errors.Is(err, errBadBody):
		return http.StatusBadRequest, badBodyAnswer, true
	}
	return 0, "", false
}

// bodyReader is a request body on the net/http path: it holds each read
// to the body deadlines (through the connection's read deadline) and
// notes how the body failed, for the error handler's answer.
type bodyReader struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	cfg   *Config
	start time.Time
	got   int64
	// failed is the body's failure (bodyError's), once it failed.
	failed atomic.Pointer[error]
}

// newBodyReader wraps r's body, read by the transport while the request
// is served through w.
func (p *Proxy) newBodyReader(w http.ResponseWriter, r *http.Request) *bodyReader {
	return &bodyReader{body: r.Body, rc: http.NewResponseController(w), cfg: &p.cfg, start: time.Now()}
}

// Read reads the body with the connection's read deadline at the body's
// deadline; at the body's end the deadline is lifted (the response may
// take what it takes). After a failure it stays: what is left of the
// body is not waited for.
func (b *bodyReader) Read(p []byte) (int, error) {
	_ = b.rc.SetReadDeadline(b.cfg.bodyDeadline(b.start, time.Now(), b.got))
	n, err := b.body.Read(p)
	b.got += int64(n)
	switch {
	case errors.Is(err, io.EOF):
		_ = b.rc.SetReadDeadline(time.Time{})
	case err != nil:
		err = bodyError(err)
		b.failed.CompareAndSwap(nil, &err)
	}
	return n, err
}

// Close closes the body.
func (b *bodyReader) Close() error { return b.body.Close() }

// failure is how the body failed, nil while it has not.
func (b *bodyReader) failure() error {
	if e := b.failed.Load(); e != nil {
		return *e
	}
	return nil
}
