// Package wake is the router's side of sleeping apps (idle pull-request
// previews scaled to zero, model.Sleeping): it follows their routes in
// Consul (sleepers.go), holds a request to one while asking the controller
// to wake the app (bus.SubjectWake, one request per app at a time) until
// the route table has an instance for it, and publishes the requests each
// app got (bus.SubjectActivity, activity.go) so that the controller knows
// which apps are idle.
package wake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/ticks"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// Defaults of the Config fields left zero.
const (
	DefaultMaxHeld          = 100
	DefaultActivityInterval = 10 * time.Second
)

// requestTimeout bounds one wake request; it is sent again (until the
// app's wake timeout) when NATS fails or nobody answers.
const requestTimeout = 5 * time.Second

// Config configures a Waker.
type Config struct {
	// Consul holds the sleeping apps (catalog.SleepingPrefix).
	Consul *consul.Client
	// Table is the router's route table, where woken apps appear.
	Table *route.Current
	// NATS carries the wake requests and activity; nil: a request to a
	// sleeping app is answered 503 at once and no activity is published.
	NATS *nats.Conn
	// Router names this router in its messages.
	Router string
	// MaxHeld bounds the requests held per app (default 100); more are
	// answered 503 at once.
	MaxHeld int
	// ActivityInterval is how often the requests per app are published
	// (default 10 s).
	ActivityInterval time.Duration
	// Wait bounds each blocking query on Consul (default 5 min).
	Wait time.Duration
	// Metrics registers the held requests and wakes; nil for none.
	Metrics prometheus.Registerer
	Log     *slog.Logger
}

// Waker holds requests to sleeping apps while they wake (it is the
// proxy's proxy.Waker) and publishes the router's activity.
type Waker struct {
	cfg      Config
	log      *slog.Logger
	sleepers *Sleepers
	activity *Activity
	held     prometheus.Counter
	wakes    *prometheus.CounterVec

	// base ends the wake requests when the Waker closes.
	base context.Context
	stop context.CancelFunc

	mu      sync.Mutex
	holding map[model.AppKey]int
	waking  map[model.AppKey]*wake
	// changed is closed, and replaced, at every route table update.
	changed chan struct{}
}

// wake is one app's wake in progress, shared by the requests held for it.
type wake struct {
	// failed is closed when the wake gave up; refused says why.
	failed  chan struct{}
	refused bool
}

// Wake outcomes, the "outcome" label of driftless_router_wakes_total.
const (
	OutcomeWoken   = "woken"
	OutcomeTimeout = "timeout"
	OutcomeRefused = "refused"
)

// New prepares a Waker; Run starts following Consul and publishing.
func New(cfg Config) *Waker {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.MaxHeld <= 0 {
		cfg.MaxHeld = DefaultMaxHeld
	}
	if cfg.ActivityInterval <= 0 {
		cfg.ActivityInterval = DefaultActivityInterval
	}
	if cfg.Table == nil {
		cfg.Table = &route.Current{}
	}
	base, stop := context.WithCancel(context.Background())
	w := &Waker{cfg: cfg, log: cfg.Log, sleepers: NewSleepers(cfg.Consul, cfg.Wait, cfg.Log), activity: NewActivity(),
		base: base, stop: stop, holding: map[model.AppKey]int{}, waking: map[model.AppKey]*wake{}, changed: make(chan struct{}),
		held: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftless_router_requests_held_total",
			Help: "Requests held while their sleeping app wakes."}),
		wakes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftless_router_wakes_total",
			Help: "Sleeping apps this router woke, by outcome: woken (an instance serves), timeout, refused."}, []string{"outcome"}),
	}
	if cfg.Metrics != nil {
		cfg.Metrics.MustRegister(w.held, w.wakes)
	}
	return w
}

// Ready is closed once the sleeping apps were read from Consul.
func (w *Waker) Ready() <-chan struct{} { return w.sleepers.Ready() }

// Run follows the sleeping apps and publishes the activity until ctx
// ends, then ends the wakes in progress.
func (w *Waker) Run(ctx context.Context) {
	defer w.stop()
	var wg sync.WaitGroup
	wg.Go(func() { w.sleepers.Run(ctx) })
	if w.cfg.NATS != nil {
		wg.Go(func() { ticks.Every(ctx, w.cfg.ActivityInterval, w.publish) })
	}
	wg.Wait()
}

// Updated takes the route table the registry swapped in (its OnUpdate):
// held requests look for their instance again.
func (w *Waker) Updated(t *route.Table) {
	w.activity.Updated(t)
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// publish sends the requests per app since the last message, if any.
func (w *Waker) publish() {
	apps := w.activity.Collect()
	if len(apps) == 0 {
		return
	}
	msg := bus.RouterActivity{Router: w.cfg.Router, Apps: apps, SentAt: time.Now().UTC()}
	if err := bus.Publish(w.cfg.NATS, bus.SubjectActivity, msg); err != nil {
		w.log.Warn("publishing the router's activity", "err", err)
	}
}

// Hold implements proxy.Waker: a request to a sleeping app's route is
// held while the app wakes, then handed back with the pool to proxy it
// to; answered 503 when too many are held for the app, when the app does
// not serve within its wake timeout (with Retry-After) or cannot be woken.
func (w *Waker) Hold(rw http.ResponseWriter, r *http.Request) (*route.Pool, bool) {
	app, ok := w.sleepers.Lookup(r.Host, r.URL.Path)
	if !ok {
		return nil, false
	}
	timeout := WakeTimeout(app.Sleeping)
	if w.cfg.NATS == nil && !app.Waking {
		plain(rw, http.StatusServiceUnavailable, 0, fmt.Sprintf("driftless: %s is asleep and this router cannot wake it (no NATS)\n", app.App))
		return nil, true
	}
	key := app.Key()
	if !w.enter(key) {
		plain(rw, http.StatusServiceUnavailable, retryAfter(timeout), fmt.Sprintf("driftless: %s is waking up and too many requests wait for it; retry shortly\n", app.App))
		return nil, true
	}
	defer w.leave(key)
	w.held.Inc()
	var wk *wake
	if !app.Waking {
		wk = w.start(app.Sleeping, timeout)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	pool, err := w.await(ctx, wk, r.Host, r.URL.Path)
	switch {
	case err == nil:
		return pool, true
	case r.Context().Err() != nil:
		rw.WriteHeader(499) // client went away; nginx's convention, as the proxy's
	case errors.Is(err, errRefused):
		plain(rw, http.StatusServiceUnavailable, 0, fmt.Sprintf("driftless: %s is asleep and could not be woken\n", app.App))
	default:
		plain(rw, http.StatusServiceUnavailable, retryAfter(timeout), fmt.Sprintf("driftless: %s is waking up; retry shortly\n", app.App))
	}
	return nil, true
}

// errRefused is a wake the controller refused; errGaveUp one that did not
// get the app an instance in time.
var (
	errRefused = errors.New("the controller refused to wake the app")
	errGaveUp  = errors.New("the app got no instance in time")
)

// await waits until the table routes host and path to an instance, wk
// (nil for an app already waking) fails or ctx ends.
func (w *Waker) await(ctx context.Context, wk *wake, host, path string) (*route.Pool, error) {
	var failed chan struct{}
	if wk != nil {
		failed = wk.failed
	}
	for {
		changed := w.changes()
		if pool := w.cfg.Table.Load().Lookup(host, path); pool != nil && len(pool.Endpoints) > 0 {
			return pool, nil
		}
		select {
		case <-changed:
		case <-failed:
			if wk.refused {
				return nil, errRefused
			}
			return nil, errGaveUp
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for an instance of %s%s: %w", host, path, ctx.Err())
		}
	}
}

// changes is closed at the next route table update.
func (w *Waker) changes() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// enter counts a request held for key; false when MaxHeld already are.
func (w *Waker) enter(key model.AppKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.holding[key] >= w.cfg.MaxHeld {
		return false
	}
	w.holding[key]++
	return true
}

// leave ends a request enter counted.
func (w *Waker) leave(key model.AppKey) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.holding[key]--; w.holding[key] <= 0 {
		delete(w.holding, key)
	}
}

// start returns app's wake in progress, or starts one: a goroutine asks
// the controller, then waits for an instance, for at most timeout.
func (w *Waker) start(app model.Sleeping, timeout time.Duration) *wake {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := app.Key()
	if wk := w.waking[key]; wk != nil {
		return wk
	}
	wk := &wake{failed: make(chan struct{})}
	w.waking[key] = wk
	go w.run(wk, app, timeout)
	return wk
}

// run carries a wake out: the wake request, sent again on NATS errors
// until the controller answers, then the wait for one of the app's
// routes to have an instance. The wake ends (and the next request to the
// app starts another) once it succeeded or failed.
func (w *Waker) run(wk *wake, app model.Sleeping, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(w.base, timeout)
	defer cancel()
	log := w.log.With("space", app.Space, "app", app.App)
	outcome := w.wake(ctx, app, log)
	if outcome == "" {
		outcome = w.serve(ctx, app)
	}
	w.mu.Lock()
	delete(w.waking, app.Key())
	w.mu.Unlock()
	w.wakes.WithLabelValues(outcome).Inc()
	switch outcome {
	case OutcomeWoken:
		log.Info("sleeping app woke and serves")
	case OutcomeRefused:
		wk.refused = true
		close(wk.failed)
	default:
		log.Warn("sleeping app did not serve in time", "timeout", timeout)
		close(wk.failed)
	}
}

// wake asks the controller to wake app until it answers or ctx ends; it
// returns "" once the controller did, else the wake's outcome.
func (w *Waker) wake(ctx context.Context, app model.Sleeping, log *slog.Logger) string {
	req := bus.WakeRequest{Space: app.Space, App: app.App, Router: w.cfg.Router}
	var bo catalog.Backoff
	for {
		var reply bus.Reply
		err := bus.Request(ctx, w.cfg.NATS, bus.SubjectWake, req, &reply, requestTimeout)
		switch {
		case err == nil && reply.OK:
			log.Info("waking a sleeping app")
			return ""
		case err == nil:
			log.Warn("the controller refused to wake a sleeping app", "err", reply.Error)
			return OutcomeRefused
		case ctx.Err() != nil:
			log.Warn("asking to wake a sleeping app: no answer in time", "err", err)
			return OutcomeTimeout
		}
		d := min(bo.Next(), time.Second)
		log.Debug("asking to wake a sleeping app; retrying", "err", err, "in", d)
		catalog.Pause(ctx, d)
	}
}

// serve waits until one of app's routes has an instance in the table.
func (w *Waker) serve(ctx context.Context, app model.Sleeping) string {
	for {
		changed := w.changes()
		t := w.cfg.Table.Load()
		for _, rt := range app.Routes {
			host, path := model.SplitRoute(rt)
			if p := t.Lookup(host, path); p != nil && len(p.Endpoints) > 0 {
				return OutcomeWoken
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return OutcomeTimeout
		}
	}
}

// retryAfter is the Retry-After of a request that was not served while
// its app woke: the wake timeout, at most 10 s, in whole seconds.
func retryAfter(timeout time.Duration) int {
	return int(math.Ceil(min(timeout, 10*time.Second).Seconds()))
}

// plain answers status with a plain text body, and Retry-After when
// retry is positive.
func plain(w http.ResponseWriter, status, retry int, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(retry))
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
