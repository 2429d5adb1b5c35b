package wake

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// DefaultWakeTimeout is how long a request is held when a sleeping app
// does not say (model.Sleeping.WakeTimeout zero).
const DefaultWakeTimeout = 60 * time.Second

// MinWakeTimeout is the shortest hold, whatever the app says.
const MinWakeTimeout = time.Second

// WakeTimeout is how long a request to app is held while it wakes: its
// WakeTimeout, DefaultWakeTimeout when zero, at least MinWakeTimeout.
func WakeTimeout(app model.Sleeping) time.Duration {
	switch d := app.WakeTimeout; {
	case d == 0:
		return DefaultWakeTimeout
	case d < MinWakeTimeout:
		return MinWakeTimeout
	default:
		return d
	}
}

// App is the sleeping app a request's route matched.
type App struct {
	model.Sleeping
	// Waking is set when the app's key is gone (a controller woke it, on
	// another router's request or this one's) less than its wake timeout
	// ago: its requests are held until it serves, without asking again.
	Waking bool
}

// Sleepers follows the sleeping apps in Consul (catalog.SleepingPrefix)
// and matches requests to their routes as the route table does.
type Sleepers struct {
	consul *consul.Client
	log    *slog.Logger
	wait   time.Duration
	now    func() time.Time
	ready  chan struct{}
	once   sync.Once

	mu   sync.Mutex
	apps map[model.AppKey]*sleeper
	// table has one pool per sleeping route; its Space and App name the
	// app (endpoints carry no address).
	table atomic.Pointer[route.Table]
}

// sleeper is one app that sleeps, or woke less than its wake timeout ago.
type sleeper struct {
	app model.Sleeping
	// woke is when its key went away; zero while it sleeps.
	woke time.Time
}

// NewSleepers prepares a follower of the sleeping apps in c; Run starts it.
// wait bounds each blocking query (5 min when zero).
func NewSleepers(c *consul.Client, wait time.Duration, log *slog.Logger) *Sleepers {
	if log == nil {
		log = slog.Default()
	}
	if wait == 0 {
		wait = 5 * time.Minute
	}
	return &Sleepers{consul: c, log: log, wait: wait, now: time.Now, ready: make(chan struct{}),
		apps: map[model.AppKey]*sleeper{}}
}

// Ready is closed once the sleeping apps were read from Consul once.
func (s *Sleepers) Ready() <-chan struct{} { return s.ready }

// Lookup returns the sleeping (or waking) app whose route matches host
// and path: the host's longest path prefix, then wildcard hosts, as
// route.Table.Lookup matches.
func (s *Sleepers) Lookup(host, path string) (App, bool) {
	pool := s.table.Load().Lookup(host, path)
	if pool == nil {
		return App{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.apps[model.AppKey{Space: pool.Space, Name: pool.App}]
	if sl == nil {
		return App{}, false
	}
	if !sl.woke.IsZero() {
		if s.now().Sub(sl.woke) > WakeTimeout(sl.app) {
			return App{}, false
		}
		return App{Sleeping: sl.app, Waking: true}, true
	}
	return App{Sleeping: sl.app}, true
}

// Run follows Consul with blocking queries until ctx ends, retrying with
// backoff when Consul fails (or restarts).
func (s *Sleepers) Run(ctx context.Context) {
	catalog.Follow(ctx, s.log, "the sleeping apps", catalog.RoleRouter, s.wait, func(opts *consul.QueryOptions) (*consul.QueryMeta, error) {
		pairs, meta, err := s.consul.KV().List(catalog.SleepingPrefix, opts)
		if err != nil {
			return nil, err
		}
		s.update(pairs)
		s.once.Do(func() { close(s.ready) })
		return meta, nil
	})
}

// update takes the sleeping apps Consul listed: those whose key went
// away are kept, waking, for their wake timeout.
func (s *Sleepers) update(pairs consul.KVPairs) {
	now := s.now()
	asleep := map[model.AppKey]model.Sleeping{}
	for _, p := range pairs {
		var app model.Sleeping
		if err := json.Unmarshal(p.Value, &app); err != nil {
			s.log.Warn("skipping a sleeping app that does not decode", "key", p.Key, "err", err)
			continue
		}
		if app.Space == "" || app.App == "" {
			s.log.Warn("skipping a sleeping app without space or name", "key", p.Key)
			continue
		}
		asleep[app.Key()] = app
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, sl := range s.apps {
		if _, ok := asleep[key]; ok {
			continue
		}
		switch {
		case sl.woke.IsZero():
			sl.woke = now
			s.log.Debug("sleeping app woke", "space", key.Space, "app", key.Name)
		case now.Sub(sl.woke) > WakeTimeout(sl.app):
			delete(s.apps, key)
		}
	}
	for key, app := range asleep {
		s.apps[key] = &sleeper{app: app}
	}
	var entries []route.Entry
	for _, sl := range s.apps {
		ep := route.Endpoint{InstanceRef: model.InstanceRef{Space: sl.app.Space, App: sl.app.App}}
		for _, rt := range sl.app.Routes {
			entries = append(entries, route.Entry{Route: rt, Endpoint: ep})
		}
	}
	s.table.Store(route.Build(entries))
}
