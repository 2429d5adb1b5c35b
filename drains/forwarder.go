package drains

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/model"
)

// Source follows an app's kept lines (journal.Journal).
type Source interface {
	Logs(ctx context.Context, q journal.LogQuery, emit func(model.LogLine) error) error
}

// Target is one app's lines going to one drain: the app, the service
// instance whose binding gives the drain, and the drain's URL.
type Target struct {
	Space, App, Service string
	// URL is the drain's URL: never logged or shown.
	URL string
}

// String names the drain without its URL.
func (t Target) String() string {
	return "syslog drain of service " + t.Service + " for app " + t.Space + "/" + t.App
}

// GoString never shows the URL.
func (t Target) GoString() string { return t.String() }

// Config tunes forwarders; zero fields take the defaults.
type Config struct {
	// QueueSize is how many lines wait for a drain before new ones are
	// dropped (default 10,000).
	QueueSize int
	// DialTimeout bounds a connection's set-up, TLS handshake included
	// (default 10 s); WriteTimeout one write (default 10 s).
	DialTimeout, WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts, doubled after each failure (defaults 500 ms and 30 s).
	MinBackoff, MaxBackoff time.Duration
	// RootCAs verify syslog-tls drains' certificates (nil: the system's).
	RootCAs *x509.CertPool
	// Metrics count lines sent and dropped (nil: counted unregistered).
	Metrics *Metrics
	Log     *slog.Logger
}

func (c *Config) defaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = 10_000
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 500 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(30*time.Second, c.MinBackoff)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// batch is how many messages one write carries at most.
const batch = 256

// warnEvery spaces out the warnings of one drain.
const warnEvery = time.Minute

// Forwarder forwards one app's lines to one drain: a reader follows the
// app's lines in the journal into a bounded queue, a writer sends them on
// a connection it makes again (backing off) whenever the drain breaks it.
type Forwarder struct {
	src Source
	t   Target
	ep  Endpoint
	cfg Config
	q   *queue
	log *slog.Logger
	// since is when the forwarder was made: its first lines are those
	// kept from then on.
	since time.Time

	mu       sync.Mutex
	warnedAt map[string]time.Time
}

// NewForwarder checks t's URL and prepares its forwarder; Run runs it.
func NewForwarder(src Source, t Target, cfg Config) (*Forwarder, error) {
	cfg.defaults()
	ep, err := ParseURL(t.URL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	return &Forwarder{src: src, t: t, ep: ep, cfg: cfg, q: newQueue(cfg.QueueSize), since: time.Now(),
		log:      cfg.Log.With("component", "drain", "space", t.Space, "app", t.App, "service", t.Service, "drain", ID(t.URL)),
		warnedAt: map[string]time.Time{}}, nil
}

// Dropped is how many lines were dropped because the queue was full.
func (f *Forwarder) Dropped() uint64 { return f.q.drops() }

// Queued is how many lines wait for the drain.
func (f *Forwarder) Queued() int { return f.q.len() }

// Run forwards the lines the app printed since the forwarder was made
// until ctx ends.
func (f *Forwarder) Run(ctx context.Context) {
	f.log.Info("forwarding the app's lines to a syslog drain", "tls", f.ep.TLS)
	var wg sync.WaitGroup
	wg.Go(func() { f.read(ctx, f.since) })
	wg.Go(func() { f.write(ctx) })
	wg.Wait()
}

// read follows the app's lines from since, and after a failure from
// the last line it took, into the queue.
func (f *Forwarder) read(ctx context.Context, since time.Time) {
	var after uint64
	wait := f.cfg.MinBackoff
	id := ID(f.t.URL)
	for ctx.Err() == nil {
		start := journal.Start{After: after}
		if after == 0 {
			start.Since = since
		}
		err := f.src.Logs(ctx, journal.LogQuery{Space: f.t.Space, App: f.t.App, Start: start, Follow: true}, func(l model.LogLine) error {
			after = l.Seq
			if !f.q.push(Format(l)) {
				f.cfg.Metrics.dropped.WithLabelValues(id).Inc()
				f.warn("drop", "a syslog drain's queue is full: dropping the app's lines until it takes them", "dropped", f.q.drops())
			}
			return nil
		})
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the journal stopped following")
		}
		f.warn("read", "reading the app's lines for a syslog drain", "err", err)
		if !sleep(ctx, wait) {
			return
		}
		wait = min(2*wait, f.cfg.MaxBackoff)
	}
}

// write sends what the queue holds, connecting when it holds something
// and no connection is up.
func (f *Forwarder) write(ctx context.Context) {
	wait := f.cfg.MinBackoff
	for f.q.wait(ctx) {
		conn, err := f.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			f.warn("dial", "connecting to a syslog drain", "err", err, "retry_in", wait)
			if !sleep(ctx, wait) {
				return
			}
			wait = min(2*wait, f.cfg.MaxBackoff)
			continue
		}
		wait = f.cfg.MinBackoff
		if err := f.session(ctx, conn); err != nil && ctx.Err() == nil {
			f.warn("write", "writing to a syslog drain", "err", err)
		}
	}
}

// dial connects to the drain, with TLS for syslog-tls. Its errors name
// neither the URL nor the address.
func (f *Forwarder) dial(ctx context.Context) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.DialTimeout)
	defer cancel()
	nd := &net.Dialer{KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	if f.ep.TLS {
		td := &tls.Dialer{NetDialer: nd, Config: &tls.Config{RootCAs: f.cfg.RootCAs, ServerName: f.ep.ServerName, MinVersion: tls.VersionTLS12}}
		conn, err = td.DialContext(ctx, "tcp", f.ep.Addr)
	} else {
		conn, err = nd.DialContext(ctx, "tcp", f.ep.Addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", bare(err))
	}
	return conn, nil
}

// bare is err without the address a net.OpError quotes.
func bare(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// session writes batches on conn until it breaks (the drain closed it
// or a write failed) or ctx ends; a batch is taken off the queue only
// once written. A drain sends nothing, so what a read sees is its
// closing: checked before each write, lines are not written into a
// connection the drain has left.
func (f *Forwarder) session(ctx context.Context, conn net.Conn) error {
	closed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		close(closed)
	}()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		conn.Close()
		<-closed
	}()
	id := ID(f.t.URL)
	var buf []byte
	for f.q.wait(ctx) {
		select {
		case <-closed:
			return errors.New("the drain closed the connection")
		default:
		}
		msgs := f.q.peek(batch)
		buf = buf[:0]
		for _, m := range msgs {
			buf = append(buf, m...)
		}
		if err := conn.SetWriteDeadline(time.Now().Add(f.cfg.WriteTimeout)); err != nil {
			return fmt.Errorf("setting a write deadline: %w", bare(err))
		}
		if _, err := conn.Write(buf); err != nil {
			return fmt.Errorf("writing %d lines: %w", len(msgs), bare(err))
		}
		f.q.commit(len(msgs))
		f.cfg.Metrics.sent.WithLabelValues(id).Add(float64(len(msgs)))
	}
	return nil
}

// warn logs msg at most once every warnEvery per kind.
func (f *Forwarder) warn(kind, msg string, args ...any) {
	f.mu.Lock()
	now := time.Now()
	ok := now.Sub(f.warnedAt[kind]) >= warnEvery
	if ok {
		f.warnedAt[kind] = now
	}
	f.mu.Unlock()
	if ok {
		f.log.Warn(msg, args...)
	}
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
