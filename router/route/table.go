// Package route is the router's routing table: host and path prefix →
// a pool of instances, balanced round-robin. A Table is immutable once
// built; the registry builds a new one on every change and the proxy
// reads the current one without locks.
package route

import (
	"net"
	"sort"
	"strings"
	"sync/atomic"
)

// Endpoint is one instance a route sends traffic to.
type Endpoint struct {
	// ID is the instance guid.
	ID string
	// Addr is "host:port".
	Addr  string
	Space string
	App   string
	Index int
}

// Pool is the instances of one route of one app.
type Pool struct {
	// Route is the route as registered, "host[/path]".
	Route string
	// Space and App name the app (the first one seen, when a route is
	// shared by several apps).
	Space, App string
	Endpoints  []Endpoint
	next       atomic.Uint64
}

// Next returns the next endpoint, round-robin; ok is false for an empty pool.
func (p *Pool) Next() (Endpoint, bool) {
	if len(p.Endpoints) == 0 {
		return Endpoint{}, false
	}
	n := p.next.Add(1) - 1
	return p.Endpoints[n%uint64(len(p.Endpoints))], true
}

// Entry is one registered route and its endpoint, the input of Build.
type Entry struct {
	Route    string
	Endpoint Endpoint
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
}

// Build makes a table of entries. Endpoints of the same route are pooled,
// sorted by app, index and id so pools are stable between rebuilds.
func Build(entries []Entry) *Table {
	pools := map[string]*Pool{}
	for _, e := range entries {
		host, path := Split(e.Route)
		if host == "" {
			continue
		}
		key := host + path
		p := pools[key]
		if p == nil {
			p = &Pool{Route: key, Space: e.Endpoint.Space, App: e.Endpoint.App}
			pools[key] = p
		}
		p.Endpoints = append(p.Endpoints, e.Endpoint)
	}
	t := &Table{hosts: map[string]*hostRoutes{}}
	for key, p := range pools {
		sort.Slice(p.Endpoints, func(i, j int) bool {
			a, b := p.Endpoints[i], p.Endpoints[j]
			if a.App != b.App {
				return a.App < b.App
			}
			if a.Index != b.Index {
				return a.Index < b.Index
			}
			return a.ID < b.ID
		})
		host, path := Split(key)
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

// Split splits a route "Host.Domain[:port]/a/b/" into its lower-case host
// (port dropped) and its path without trailing slash ("" for none).
func Split(route string) (host, path string) {
	host, path, _ = strings.Cut(route, "/")
	host = NormalizeHost(host)
	path = strings.TrimSuffix(path, "/")
	if path != "" {
		path = "/" + path
	}
	return host, path
}

// NormalizeHost lower-cases a Host header and drops its port and a
// trailing dot.
func NormalizeHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// Lookup returns the pool of the route that matches host and the longest
// path prefix of path, segment-wise: route "/api" matches "/api" and
// "/api/x" but not "/apix".
func (t *Table) Lookup(host, path string) *Pool {
	if t == nil {
		return nil
	}
	hr := t.hosts[NormalizeHost(host)]
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

// Current holds the table in use; the registry stores, the proxy loads.
type Current struct {
	p atomic.Pointer[Table]
}

// Load returns the table in use (nil before the first Store).
func (c *Current) Load() *Table { return c.p.Load() }

// Store makes t the table in use.
func (c *Current) Store(t *Table) { c.p.Store(t) }
