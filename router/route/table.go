// Package route is the router's routing table: host and path prefix →
// a pool of instances, balanced round-robin or least-connections (the
// app's choice, else the router's default). A Table is immutable once
// built; the registry builds a new one on every change and the proxy
// reads the current one without locks.
package route

import (
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/driftless/driftless/model"
)

// Endpoint is one instance a route sends traffic to, and where.
type Endpoint struct {
	model.InstanceRef
	// Addr is "host:port".
	Addr string
	// HTTP2 says the instance is reached over HTTP/2 cleartext (h2c) on
	// this route (its protocol is http2).
	HTTP2 bool
}

// Pool is the instances of one route of one app.
type Pool struct {
	// Route is the route as registered, "host[/path]".
	Route string
	// Space and App name the app (the first one seen, when a route is
	// shared by several apps).
	Space, App string
	Endpoints  []Endpoint
	// Balance is round-robin (the default) or least-connections.
	Balance model.Balance
	next    atomic.Uint64
	// counts are the per-endpoint counters (same index), each endpoint's
	// pair on one cache line.
	counts []counts
	// HTTP2 is set when an endpoint of the pool is reached over h2c: the
	// proxy's HTTP/1.1 fast path hands such requests to net/http.
	HTTP2 bool
}

// counts are one endpoint's counters: the requests in flight (for
// least-connections) and those sent to it since the last Drain.
type counts struct {
	active, sent atomic.Int64
}

// Next returns the next endpoint, round-robin; ok is false for an empty pool.
func (p *Pool) Next() (Endpoint, bool) {
	i, ok := p.Pick(nil)
	if !ok {
		return Endpoint{}, false
	}
	return p.Endpoints[i], true
}

// Pick chooses an endpoint by the pool's algorithm among those skip does
// not reject (given each endpoint's index and value; nil skips none) and
// returns its index; ok is false when none is left. Callers that want
// least-connections to count the request call Start(i) and, when it
// ends, Done(i).
func (p *Pool) Pick(skip func(i int, e Endpoint) bool) (int, bool) {
	n := len(p.Endpoints)
	if n == 0 {
		return 0, false
	}
	if p.Balance == model.BalanceLeastConnections {
		best, bestActive := -1, int64(0)
		start := int(p.next.Add(1) % uint64(n)) // rotate among equals
		for k := range n {
			i := (start + k) % n
			if skip != nil && skip(i, p.Endpoints[i]) {
				continue
			}
			if a := p.counts[i].active.Load(); best < 0 || a < bestActive {
				best, bestActive = i, a
			}
		}
		return best, best >= 0
	}
	for range n {
		i := int((p.next.Add(1) - 1) % uint64(n))
		if skip == nil || !skip(i, p.Endpoints[i]) {
			return i, true
		}
	}
	return 0, false
}

// Find returns the index of the endpoint with instance id.
func (p *Pool) Find(id string) (int, bool) {
	for i, e := range p.Endpoints {
		if e.GUID == id {
			return i, true
		}
	}
	return 0, false
}

// Start counts a request to endpoint i as in flight.
func (p *Pool) Start(i int) { p.counts[i].active.Add(1) }

// Done ends a request Start counted.
func (p *Pool) Done(i int) { p.counts[i].active.Add(-1) }

// Sent counts a request sent to endpoint i, for the activity Drain
// reports (once per request, not per attempt).
func (p *Pool) Sent(i int) { p.counts[i].sent.Add(1) }

// Entry is one registered route and its endpoint, the input of Build.
type Entry struct {
	Route    string
	Endpoint Endpoint
	// Balance is the app's balancing preference ("" for round-robin).
	Balance model.Balance
}

// hostRoutes are the pools of one host, longest path first.
type hostRoutes struct {
	paths []pathPool
}

type pathPool struct {
	path string // "" or "/a/b" (no trailing slash)
	pool *Pool
}

// Table maps hosts and paths to pools.
type Table struct {
	hosts map[string]*hostRoutes
	size  int
	// Built is when the table was made.
	Built time.Time
}

// Build makes a table of entries. Endpoints of the same route are pooled,
// sorted by app, index and id so pools are stable between rebuilds.
func Build(entries []Entry) *Table {
	pools := map[string]*Pool{}
	for _, e := range entries {
		host, path := model.SplitRoute(e.Route)
		if host == "" {
			continue
		}
		key := host + path
		p := pools[key]
		if p == nil {
			p = &Pool{Route: key, Space: e.Endpoint.Space, App: e.Endpoint.App, Balance: model.BalanceRoundRobin}
			pools[key] = p
		}
		if e.Balance == model.BalanceLeastConnections {
			p.Balance = model.BalanceLeastConnections
		}
		p.Endpoints = append(p.Endpoints, e.Endpoint)
		p.HTTP2 = p.HTTP2 || e.Endpoint.HTTP2
	}
	t := &Table{hosts: map[string]*hostRoutes{}, Built: time.Now()}
	for key, p := range pools {
		sort.Slice(p.Endpoints, func(i, j int) bool {
			a, b := p.Endpoints[i], p.Endpoints[j]
			if a.App != b.App {
				return a.App < b.App
			}
			if a.Index != b.Index {
				return a.Index < b.Index
			}
			return a.GUID < b.GUID
		})
		p.counts = make([]counts, len(p.Endpoints))
		host, path := model.SplitRoute(key)
		hr := t.hosts[host]
		if hr == nil {
			hr = &hostRoutes{}
			t.hosts[host] = hr
		}
		hr.paths = append(hr.paths, pathPool{path: path, pool: p})
		t.size++
	}
	for _, hr := range t.hosts {
		sort.Slice(hr.paths, func(i, j int) bool { return len(hr.paths[i].path) > len(hr.paths[j].path) })
	}
	return t
}

// Lookup returns the pool of the route that matches host and the longest
// path prefix of path, segment-wise: route "/api" matches "/api" and
// "/api/x" but not "/apix". A host without a matching route falls back to
// wildcard routes, the most specific first: "a.b.example.com" tries
// "*.b.example.com", then "*.example.com".
func (t *Table) Lookup(host, path string) *Pool {
	if t == nil {
		return nil
	}
	host = model.NormalizeHost(host)
	if p := t.hosts[host].match(path); p != nil {
		return p
	}
	for rest := host; ; {
		_, after, ok := strings.Cut(rest, ".")
		if !ok || after == "" {
			return nil
		}
		if p := t.hosts["*."+after].match(path); p != nil {
			return p
		}
		rest = after
	}
}

// match finds the longest path route of one host that matches path.
func (hr *hostRoutes) match(path string) *Pool {
	if hr == nil {
		return nil
	}
	for _, pp := range hr.paths {
		if pp.path == "" {
			return pp.pool
		}
		if strings.HasPrefix(path, pp.path) && (len(path) == len(pp.path) || path[len(pp.path)] == '/' || path[len(pp.path)] == '?') {
			return pp.pool
		}
	}
	return nil
}

// Len is the number of routes in the table.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return t.size
}

// Routes lists the table's routes, sorted.
func (t *Table) Routes() []string {
	var out []string
	if t == nil {
		return out
	}
	for host, hr := range t.hosts {
		for _, pp := range hr.paths {
			out = append(out, host+pp.path)
		}
	}
	sort.Strings(out)
	return out
}

// Drain calls f with every endpoint that got requests (Sent) since the
// last Drain of t and how many, and zeroes its count.
func (t *Table) Drain(f func(e Endpoint, n int64)) {
	if t == nil {
		return
	}
	for _, hr := range t.hosts {
		for _, pp := range hr.paths {
			for i := range pp.pool.counts {
				c := &pp.pool.counts[i].sent
				if c.Load() == 0 { // no write to an idle endpoint's line
					continue
				}
				if n := c.Swap(0); n > 0 {
					f(pp.pool.Endpoints[i], n)
				}
			}
		}
	}
}

// Current holds the table in use; the registry stores, the proxy loads.
type Current struct {
	p atomic.Pointer[Table]
}

// Load returns the table in use (nil before the first Store).
func (c *Current) Load() *Table { return c.p.Load() }

// Store makes t the table in use.
func (c *Current) Store(t *Table) { c.p.Store(t) }
