package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// fakeConsul serves the three endpoints the registry reads, from memory:
// /v1/catalog/services, /v1/health/service/<name> and the list of
// catalog.CellsPrefix (every cell of an instance, live unless killed), each with an
// X-Consul-Index, blocking while ?index= is the current index (until a
// change, ?wait= or at most 2 s).
type fakeConsul struct {
	mu       sync.Mutex
	index    uint64
	changed  chan struct{}                     // closed and replaced on every change
	services map[string][]string               // name → tags, as the catalog lists them
	entries  map[string][]*consul.ServiceEntry // name → passing instances
	queried  map[string]int                    // health queries per service name
	cells    map[string]bool                   // cell → live
}

func newFakeConsul() *fakeConsul {
	return &fakeConsul{index: 1, changed: make(chan struct{}), services: map[string][]string{},
		entries: map[string][]*consul.ServiceEntry{}, queried: map[string]int{}, cells: map[string]bool{}}
}

// set changes the state under lock and wakes blocked queries.
func (f *fakeConsul) set(change func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change()
	f.index++
	close(f.changed)
	f.changed = make(chan struct{})
}

// addInstance registers an instance as catalog.Instance makes it (an
// address "" falls back to node's).
func (f *fakeConsul) addInstance(in model.Endpoint, node string) {
	reg := catalog.Instance(in)
	f.set(func() {
		if _, known := f.cells[in.Cell]; !known && in.Cell != "" {
			f.cells[in.Cell] = true
		}
		f.services[reg.Service] = reg.Tags
		f.entries[reg.Service] = append(f.entries[reg.Service], &consul.ServiceEntry{
			Node:    &consul.Node{Node: "n1", Address: node},
			Service: &reg,
		})
	})
}

// addService lists a service with tags and one passing instance that
// carries the same tags (a route tag included, as a cell's would not).
func (f *fakeConsul) addService(name string, tags ...string) {
	f.set(func() {
		f.services[name] = tags
		f.entries[name] = []*consul.ServiceEntry{{Node: &consul.Node{Address: "10.9.9.9"},
			Service: &consul.AgentService{ID: name + "-1", Service: name, Tags: append(tags, catalog.RouteTagPrefix+name+".apps.localhost"), Port: 9}}}
	})
}

// removeService takes a service off the catalog's list only: its health
// query would still answer its instances, so only the registry's
// following of the catalog can drop them.
func (f *fakeConsul) removeService(name string) {
	f.set(func() { delete(f.services, name) })
}

func (f *fakeConsul) removeInstance(name, guid string) {
	f.set(func() {
		f.entries[name] = slices.DeleteFunc(f.entries[name], func(e *consul.ServiceEntry) bool { return e.Service.ID == guid })
	})
}

// setCell makes a cell live (holding its key) or dead.
func (f *fakeConsul) setCell(cell string, live bool) {
	f.set(func() { f.cells[cell] = live })
}

func (f *fakeConsul) queries(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queried[name]
}

func (f *fakeConsul) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	if want, err := strconv.ParseUint(q.Get("index"), 10, 64); err == nil && want >= f.index {
		wait, err := time.ParseDuration(q.Get("wait"))
		if err != nil || wait <= 0 || wait > 2*time.Second {
			wait = 2 * time.Second
		}
		ch := f.changed
		f.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ch:
		case <-t.C:
		case <-r.Context().Done():
		}
		t.Stop()
		f.mu.Lock()
	}
	defer f.mu.Unlock()
	var body any
	switch name, ok := strings.CutPrefix(r.URL.Path, "/v1/health/service/"); {
	case r.URL.Path == "/v1/catalog/services":
		body = f.services
	case r.URL.Path == "/v1/kv/"+catalog.CellsPrefix:
		pairs := consul.KVPairs{}
		for cell, live := range f.cells {
			if live {
				pairs = append(pairs, &consul.KVPair{Key: catalog.CellKey(cell), Session: "session-" + cell})
			}
		}
		body = pairs
	case ok:
		f.queried[name]++
		var out []*consul.ServiceEntry
		for _, e := range f.entries[name] {
			if tag := q.Get("tag"); tag == "" || slices.Contains(e.Service.Tags, tag) {
				out = append(out, e)
			}
		}
		body = out
	default:
		http.NotFound(w, r)
		return
	}
	w.Header().Set("X-Consul-Index", strconv.FormatUint(f.index, 10))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(body)
}

// start runs a registry against f until the test ends and waits until it
// is ready.
func start(t *testing.T, f *fakeConsul, balance model.Balance) *Registry {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client, err := consul.NewClient(&consul.Config{Address: strings.TrimPrefix(srv.URL, "http://"), Scheme: "http"})
	if err != nil {
		t.Fatal(err)
	}
	r := New(Config{Consul: client, Log: slog.New(slog.DiscardHandler), Wait: time.Second, DefaultBalance: balance})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("the registry did not stop within 5 s of its context ending")
		}
	})
	select {
	case <-r.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("the registry was not ready within 5 s")
	}
	return r
}

// waitFor polls cond for at most 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("not within 5 s: %s", what)
}

// endpoint is an instance of dev/app at 10.0.0.5:port serving routes.
func endpoint(app string, index, port int, routes ...string) model.Endpoint {
	return model.Endpoint{
		InstanceRef: model.InstanceRef{GUID: fmt.Sprintf("%s-%d", app, index), Space: "dev", App: app, Index: index, ReleaseID: "r1", Commit: "c1"},
		Cell:        "cell-1", Address: "10.0.0.5", Port: port, Routes: routes,
	}
}

func TestOnlyAppServicesAreWatched(t *testing.T) {
	f := newFakeConsul()
	f.addInstance(endpoint("hello", 0, 40001, "hello.apps.localhost"), "10.0.0.1")
	f.addService(catalog.CellServiceName, catalog.Tag)  // a cell: driftless, not an app
	f.addService("controller", catalog.Tag)             // a controller
	f.addService("web", "driftless-application", "web") // someone else's tags
	f.addService("consul")
	r := start(t, f, "")

	if got, want := r.Table().Routes(), []string{"hello.apps.localhost"}; !slices.Equal(got, want) {
		t.Errorf("routes when ready %v, want %v", got, want)
	}
	// A new app service is picked up; a new non-app one still is not.
	f.addInstance(endpoint("late", 0, 40002, "late.apps.localhost"), "10.0.0.1")
	f.addService("other-cell", catalog.Tag)
	waitFor(t, "the late app is routed", func() bool { return r.Table().Lookup("late.apps.localhost", "/") != nil })
	for _, name := range []string{catalog.CellServiceName, "controller", "web", "consul", "other-cell"} {
		if n := f.queries(name); n != 0 {
			t.Errorf("service %q (not tagged %s) was watched: %d health queries", name, catalog.AppTag, n)
		}
	}
	if f.queries("dev-hello") == 0 {
		t.Error("the app service dev-hello was never queried")
	}
}

func TestInstancesBecomeEndpoints(t *testing.T) {
	f := newFakeConsul()
	f.addInstance(endpoint("hello", 1, 40002, "hello.apps.localhost", "hello.apps.localhost/api"), "10.0.0.1")
	f.addInstance(endpoint("hello", 0, 40001, "hello.apps.localhost"), "10.0.0.1")
	noAddr := endpoint("worker", 0, 40009, "w.apps.localhost")
	noAddr.Address = "" // Consul then gives the node's address
	f.addInstance(noAddr, "10.0.0.7")
	r := start(t, f, "")

	tests := []struct {
		host, path string
		route      string
		want       []route.Endpoint
	}{
		{"hello.apps.localhost", "/", "hello.apps.localhost", []route.Endpoint{
			{InstanceRef: endpoint("hello", 0, 0).InstanceRef, Addr: "10.0.0.5:40001"},
			{InstanceRef: endpoint("hello", 1, 0).InstanceRef, Addr: "10.0.0.5:40002"},
		}},
		{"HELLO.apps.localhost:8080", "/api/v1", "hello.apps.localhost/api", []route.Endpoint{
			{InstanceRef: endpoint("hello", 1, 0).InstanceRef, Addr: "10.0.0.5:40002"},
		}},
		{"w.apps.localhost", "/", "w.apps.localhost", []route.Endpoint{
			{InstanceRef: endpoint("worker", 0, 0).InstanceRef, Addr: "10.0.0.7:40009"},
		}},
	}
	for _, tt := range tests {
		p := r.Table().Lookup(tt.host, tt.path)
		if p == nil {
			t.Errorf("%s%s: no pool", tt.host, tt.path)
			continue
		}
		if p.Route != tt.route || p.Space != "dev" || !slices.Equal(p.Endpoints, tt.want) {
			t.Errorf("%s%s: pool %s of %s/%s with %+v, want %s with %+v", tt.host, tt.path, p.Route, p.Space, p.App, p.Endpoints, tt.route, tt.want)
		}
	}
	if n := r.Table().Len(); n != 3 {
		t.Errorf("table of %d routes, want 3", n)
	}
}

func TestDisappearingIsDropped(t *testing.T) {
	f := newFakeConsul()
	f.addInstance(endpoint("hello", 0, 40001, "hello.apps.localhost"), "10.0.0.1")
	f.addInstance(endpoint("hello", 1, 40002, "hello.apps.localhost"), "10.0.0.1")
	f.addInstance(endpoint("old", 0, 40003, "old.apps.localhost"), "10.0.0.1")
	r := start(t, f, "")
	if r.Table().Len() != 2 {
		t.Fatalf("routes when ready: %v", r.Table().Routes())
	}

	f.removeService("dev-old")
	waitFor(t, "the removed service's route is dropped", func() bool { return r.Table().Lookup("old.apps.localhost", "/") == nil })
	// And its watch stopped: changes wake every blocked query, and a
	// watch still running would ask again.
	before := f.queries("dev-old")
	f.set(func() {})
	f.set(func() {})
	time.Sleep(200 * time.Millisecond)
	if n := f.queries("dev-old") - before; n != 0 {
		t.Errorf("the removed service was queried %d more times", n)
	}

	f.removeInstance("dev-hello", "hello-0")
	waitFor(t, "the removed instance is dropped", func() bool {
		p := r.Table().Lookup("hello.apps.localhost", "/")
		return p != nil && len(p.Endpoints) == 1 && p.Endpoints[0].GUID == "hello-1"
	})

	f.removeInstance("dev-hello", "hello-1") // the service stays listed, with no instance
	waitFor(t, "a route without instances is dropped", func() bool { return r.Table().Len() == 0 })
}

func TestDefaultBalance(t *testing.T) {
	tests := []struct {
		name            string
		dflt, app, want model.Balance
	}{
		{"neither chooses", model.BalanceDefault, model.BalanceDefault, model.BalanceRoundRobin},
		{"the router's default for an app without one", model.BalanceLeastConnections, model.BalanceDefault, model.BalanceLeastConnections},
		{"the app's round-robin over the router's default", model.BalanceLeastConnections, model.BalanceRoundRobin, model.BalanceRoundRobin},
		{"the app's least-connections over the router's round-robin", model.BalanceRoundRobin, model.BalanceLeastConnections, model.BalanceLeastConnections},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeConsul()
			in := endpoint("hello", 0, 40001, "hello.apps.localhost")
			in.Balance = tt.app
			f.addInstance(in, "10.0.0.1")
			r := start(t, f, tt.dflt)
			p := r.Table().Lookup("hello.apps.localhost", "/")
			if p == nil {
				t.Fatal("no pool")
			}
			if p.Balance != tt.want {
				t.Errorf("pool balance %q, want %q", p.Balance, tt.want)
			}
		})
	}
}

// TestDeadCellsAreDropped: the instances of a cell that no longer holds
// its key leave the table, though Consul still lists them passing, and
// come back with the cell.
func TestDeadCellsAreDropped(t *testing.T) {
	f := newFakeConsul()
	f.addInstance(endpoint("hello", 0, 40001, "hello.apps.localhost"), "10.0.0.1")
	other := endpoint("hello", 1, 40002, "hello.apps.localhost")
	other.Cell = "cell-2"
	f.addInstance(other, "10.0.0.1")
	noCell := endpoint("hello", 2, 40003, "hello.apps.localhost")
	noCell.Cell = ""
	f.addInstance(noCell, "10.0.0.1")
	f.setCell("cell-2", false)
	r := start(t, f, "")
	endpoints := func() []int {
		var idx []int
		if p := r.Table().Lookup("hello.apps.localhost", "/"); p != nil {
			for _, e := range p.Endpoints {
				idx = append(idx, e.Index)
			}
		}
		slices.Sort(idx)
		return idx
	}
	if got := endpoints(); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("indexes routed when ready: %v, want 0 and 2 (cell-2 is dead)", got)
	}
	f.setCell("cell-2", true)
	waitFor(t, "cell-2's instance is routed once it is live", func() bool { return slices.Equal(endpoints(), []int{0, 1, 2}) })
	f.setCell("cell-1", false)
	waitFor(t, "cell-1's instance leaves with its cell", func() bool { return slices.Equal(endpoints(), []int{1, 2}) })
}
