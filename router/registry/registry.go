// Package registry feeds the router's table from Consul with blocking
// queries: one on the service catalog (which app services exist: those
// tagged catalog.AppTag, never cells or controllers), one per app service
// (its passing instances, registered as catalog.InstanceOps makes them)
// and one on the live cells (catalog.CellsPrefix): the instances of a cell
// that no longer holds its key are left out. An answer that changes
// something asks for a new table; the table is rebuilt and swapped in at
// once, and asks made while it is rebuilt, or within RebuildGap of the
// last build, are served by one more build: a deploy of thousands of
// instances costs a few builds per second, not one whole-table build per
// registration. The router's default balancing applies to apps without
// their own.
package registry

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// Config configures a Registry.
type Config struct {
	Consul *consul.Client
	// Table receives every new table.
	Table *route.Current
	Log   *slog.Logger
	// Wait is the longest a blocking query waits (default 5 min).
	Wait time.Duration
	// OnUpdate, if set, is called after each table swap.
	OnUpdate func(*route.Table)
	// DefaultBalance is the balancing of the routes of apps that do not
	// choose (round-robin when empty).
	DefaultBalance model.Balance
	// RebuildGap is the least time between two table builds (default
	// 50 ms): a change after a quiet spell is in the table at once, the
	// changes of a busy spell at most RebuildGap later.
	RebuildGap time.Duration
	// ServicesGap is the least time between two queries of the service
	// catalog (default 250 ms). Its index moves with every registration,
	// so during a deploy of thousands of instances each answer would list
	// every service again for nothing new; only a new app waits for it.
	ServicesGap time.Duration
}

// Registry keeps a route table in step with Consul.
type Registry struct {
	cfg   Config
	log   *slog.Logger
	ready chan struct{}
	// rebuildAsked holds one pending ask for a new table.
	rebuildAsked chan struct{}

	mu       sync.Mutex
	services map[string]*watch // by service name
	loaded   map[string]bool   // services answered at least once
	waiting  map[string]bool   // services of the first catalog answer not yet loaded
	isReady  bool
	// listed is set by the first answer of the service catalog.
	listed bool
	// cells are the live cells (nil until first loaded).
	cells map[string]bool
}

type watch struct {
	cancel    context.CancelFunc
	instances []model.Endpoint
}

// New prepares a registry; Run starts it.
func New(cfg Config) *Registry {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Wait == 0 {
		cfg.Wait = 5 * time.Minute
	}
	if cfg.Table == nil {
		cfg.Table = &route.Current{}
	}
	if cfg.RebuildGap == 0 {
		cfg.RebuildGap = 50 * time.Millisecond
	}
	if cfg.ServicesGap == 0 {
		cfg.ServicesGap = 250 * time.Millisecond
	}
	return &Registry{cfg: cfg, log: cfg.Log, ready: make(chan struct{}), rebuildAsked: make(chan struct{}, 1),
		services: map[string]*watch{}, loaded: map[string]bool{}, waiting: map[string]bool{}}
}

// Ready is closed once every service that existed at start was loaded.
func (r *Registry) Ready() <-chan struct{} { return r.ready }

// Table is the current table.
func (r *Registry) Table() *route.Table { return r.cfg.Table.Load() }

// Run follows Consul until ctx ends.
func (r *Registry) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer func() {
		r.mu.Lock()
		for _, w := range r.services {
			w.cancel()
		}
		r.mu.Unlock()
		wg.Wait()
	}()
	wg.Go(func() { r.rebuildLoop(ctx) })
	wg.Go(func() { r.watchCells(ctx) })
	first := true
	catalog.Follow(ctx, r.log, "the services", catalog.RoleRouter, r.cfg.Wait, func(opts *consul.QueryOptions) (*consul.QueryMeta, error) {
		services, meta, err := r.cfg.Consul.Catalog().Services(opts)
		if err != nil {
			return nil, err
		}
		names := map[string]bool{}
		for name, tags := range services {
			if catalog.IsApp(tags) {
				names[name] = true
			}
		}
		r.reconcileWatches(ctx, &wg, names, first)
		first = false
		catalog.Pause(ctx, r.cfg.ServicesGap)
		return meta, nil
	})
	return nil
}

// reconcileWatches starts a watch per new service and stops those of
// services that are gone.
func (r *Registry) reconcileWatches(ctx context.Context, wg *sync.WaitGroup, names map[string]bool, first bool) {
	r.mu.Lock()
	changed := false
	for name, w := range r.services {
		if !names[name] {
			w.cancel()
			delete(r.services, name)
			delete(r.loaded, name)
			delete(r.waiting, name)
			changed = true
		}
	}
	for name := range names {
		if _, ok := r.services[name]; ok {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		r.services[name] = &watch{cancel: cancel}
		if first {
			r.waiting[name] = true
		}
		wg.Go(func() { r.watchService(wctx, name) })
	}
	r.listed = true
	r.checkReady()
	r.mu.Unlock()
	if changed {
		r.askRebuild()
	}
}

// checkReady closes ready once the live cells and every service of the
// catalog's first answer are loaded. Caller holds r.mu.
func (r *Registry) checkReady() {
	if !r.isReady && r.listed && len(r.waiting) == 0 && r.cells != nil {
		r.isReady = true
		r.rebuildLocked()
		close(r.ready)
	}
}

// watchService follows the passing instances of one service.
func (r *Registry) watchService(ctx context.Context, name string) {
	catalog.Follow(ctx, r.log, "the instances of "+name, catalog.RoleRouter, r.cfg.Wait, func(opts *consul.QueryOptions) (*consul.QueryMeta, error) {
		entries, meta, err := r.cfg.Consul.Health().Service(name, catalog.AppTag, true, opts)
		if err != nil {
			return nil, err
		}
		var insts []model.Endpoint
		for _, e := range entries {
			if in, ok := catalog.FromHealthEntry(e); ok {
				insts = append(insts, in)
			}
		}
		r.mu.Lock()
		w := r.services[name]
		if w == nil || ctx.Err() != nil {
			r.mu.Unlock()
			return nil, catalog.ErrStop
		}
		w.instances = insts
		r.loaded[name] = true
		delete(r.waiting, name)
		if !r.isReady {
			r.checkReady()
			r.mu.Unlock()
			return meta, nil
		}
		r.mu.Unlock()
		r.askRebuild()
		return meta, nil
	})
}

// watchCells follows the live cells.
func (r *Registry) watchCells(ctx context.Context) {
	catalog.Follow(ctx, r.log, "the live cells", catalog.RoleRouter, r.cfg.Wait, func(opts *consul.QueryOptions) (*consul.QueryMeta, error) {
		pairs, meta, err := r.cfg.Consul.KV().List(catalog.CellsPrefix, opts)
		if err != nil {
			return nil, err
		}
		live := catalog.LiveCells(pairs)
		r.mu.Lock()
		same := maps.Equal(live, r.cells) && r.cells != nil
		r.cells = live
		if !r.isReady {
			r.checkReady()
			r.mu.Unlock()
			return meta, nil
		}
		r.mu.Unlock()
		if !same {
			r.askRebuild()
		}
		return meta, nil
	})
}

// askRebuild asks rebuildLoop for a new table; an ask already pending
// covers this one.
func (r *Registry) askRebuild() {
	select {
	case r.rebuildAsked <- struct{}{}:
	default:
	}
}

// rebuildLoop builds a table for each ask, at most one per RebuildGap.
func (r *Registry) rebuildLoop(ctx context.Context) {
	gap := time.NewTimer(r.cfg.RebuildGap)
	gap.Stop()
	defer gap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.rebuildAsked:
		}
		r.rebuild()
		gap.Reset(r.cfg.RebuildGap)
		select {
		case <-ctx.Done():
			return
		case <-gap.C:
		}
	}
}

func (r *Registry) rebuild() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.isReady {
		r.rebuildLocked()
	}
}

// rebuildLocked builds and swaps in a table of every loaded instance of
// a live cell. Caller holds r.mu.
func (r *Registry) rebuildLocked() {
	names := make([]string, 0, len(r.services))
	for name := range r.services {
		names = append(names, name)
	}
	sort.Strings(names)
	var entries []route.Entry
	for _, name := range names {
		for _, in := range r.services[name].instances {
			if in.Cell != "" && !r.cells[in.Cell] {
				continue
			}
			ep := route.Endpoint{InstanceRef: in.InstanceRef, Addr: fmt.Sprintf("%s:%d", in.Address, in.Port)}
			balance := in.Balance
			if balance == "" {
				balance = r.cfg.DefaultBalance
			}
			for _, rt := range in.Routes {
				e := route.Entry{Route: rt, Endpoint: ep, Balance: balance}
				e.Endpoint.HTTP2 = slices.Contains(in.HTTP2Routes, rt)
				entries = append(entries, e)
			}
		}
	}
	t := route.Build(entries)
	r.cfg.Table.Store(t)
	r.log.Debug("route table updated", "routes", t.Len(), "endpoints", len(entries))
	if r.cfg.OnUpdate != nil {
		r.cfg.OnUpdate(t)
	}
}
