package route

import (
	"fmt"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

func ep(app string, index int) Endpoint {
	return Endpoint{InstanceRef: model.InstanceRef{GUID: fmt.Sprintf("%s-%d", app, index), App: app, Space: "dev", Index: index}, Addr: fmt.Sprintf("127.0.0.1:%d", 61000+index)}
}

func TestLookup(t *testing.T) {
	table := Build([]Entry{
		{Route: "hello.apps.localhost", Endpoint: ep("hello", 0)},
		{Route: "hello.apps.localhost", Endpoint: ep("hello", 1)},
		{Route: "hello.apps.localhost/api", Endpoint: ep("api", 0)},
		{Route: "hello.apps.localhost/api/v2/", Endpoint: ep("api2", 0)},
		{Route: "Other.Apps.Localhost", Endpoint: ep("other", 0)},
		{Route: "*.wild.localhost", Endpoint: ep("wild", 0)},
		{Route: "*.wild.localhost/admin", Endpoint: ep("wild-admin", 0)},
		{Route: "*.deep.wild.localhost", Endpoint: ep("deep", 0)},
		{Route: "exact.wild.localhost", Endpoint: ep("exact", 0)},
	})
	tests := []struct {
		host, path, want string
	}{
		{"hello.apps.localhost", "/", "hello"},
		{"HELLO.apps.localhost:8080", "/x", "hello"},
		{"hello.apps.localhost.", "/", "hello"},
		{"hello.apps.localhost", "/api", "api"},
		{"hello.apps.localhost", "/api/users", "api"},
		{"hello.apps.localhost", "/apix", "hello"},
		{"hello.apps.localhost", "/api/v2", "api2"},
		{"hello.apps.localhost", "/api/v2/x", "api2"},
		{"hello.apps.localhost", "/api/v20", "api"},
		{"x.wild.localhost", "/", "wild"},
		{"a.b.wild.localhost", "/", "wild"},
		{"a.deep.wild.localhost", "/", "deep"},
		{"deep.wild.localhost", "/", "wild"},
		{"x.wild.localhost", "/admin/users", "wild-admin"},
		{"exact.wild.localhost", "/", "exact"},
		{"exact.wild.localhost", "/admin", "exact"}, // an exact host wins over any wildcard
		{"wild.localhost", "/", ""},
		{"other.apps.localhost", "/", "other"},
		{"unknown.apps.localhost", "/", ""},
		{"", "/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			p := table.Lookup(tt.host, tt.path)
			got := ""
			if p != nil {
				got = p.App
			}
			if got != tt.want {
				t.Fatalf("Lookup(%q, %q) = %q, want %q", tt.host, tt.path, got, tt.want)
			}
		})
	}
	if table.Len() != 8 {
		t.Errorf("Len = %d, want 8 (%v)", table.Len(), table.Routes())
	}
}

func TestRoundRobin(t *testing.T) {
	table := Build([]Entry{{Route: "a.x", Endpoint: ep("a", 2)}, {Route: "a.x", Endpoint: ep("a", 0)}, {Route: "a.x", Endpoint: ep("a", 1)}})
	p := table.Lookup("a.x", "/")
	var got []int
	for range 6 {
		e, ok := p.Next()
		if !ok {
			t.Fatal("empty pool")
		}
		got = append(got, e.Index)
	}
	if fmt.Sprint(got) != "[0 1 2 0 1 2]" {
		t.Fatalf("round robin order %v", got)
	}
	if _, ok := (&Pool{}).Next(); ok {
		t.Fatal("empty pool gave an endpoint")
	}
}

func TestCurrentSwap(t *testing.T) {
	var c Current
	if c.Load().Lookup("a.x", "/") != nil || c.Load().Len() != 0 {
		t.Fatal("nil table should match nothing")
	}
	c.Store(Build([]Entry{{Route: "a.x", Endpoint: ep("a", 0)}}))
	if c.Load().Lookup("a.x", "/") == nil {
		t.Fatal("route missing after store")
	}
	c.Store(Build(nil))
	if c.Load().Lookup("a.x", "/") != nil {
		t.Fatal("route still there after removal")
	}
}

func BenchmarkLookup(b *testing.B) {
	var entries []Entry
	for i := range 10000 {
		entries = append(entries, Entry{Route: fmt.Sprintf("app%d.apps.localhost", i), Endpoint: ep(fmt.Sprintf("app%d", i), 0)})
		entries = append(entries, Entry{Route: fmt.Sprintf("app%d.apps.localhost/api", i), Endpoint: ep(fmt.Sprintf("api%d", i), 0)})
	}
	table := Build(entries)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if table.Lookup("app4242.apps.localhost", "/api/users") == nil {
				b.Fatal("no route")
			}
			i++
		}
	})
}

func TestLeastConnections(t *testing.T) {
	table := Build([]Entry{
		{Route: "lc.x", Endpoint: ep("lc", 0), Balance: model.BalanceLeastConnections},
		{Route: "lc.x", Endpoint: ep("lc", 1)},
		{Route: "lc.x", Endpoint: ep("lc", 2)},
	})
	p := table.Lookup("lc.x", "/")
	if p.Balance != model.BalanceLeastConnections {
		t.Fatalf("balance %q", p.Balance)
	}
	// Two long requests on 0 and 1: the next goes to 2, then 2 again
	// while 0 and 1 are busy and 2 is not.
	p.Start(0)
	p.Start(1)
	i, _ := p.Pick(nil)
	if i != 2 {
		t.Fatalf("picked %d, want the idle endpoint 2", i)
	}
	p.Start(2)
	p.Done(0)
	if i, _ := p.Pick(nil); i != 0 {
		t.Fatalf("picked %d, want 0 (fewest in flight)", i)
	}
	// Skipped endpoints (open circuits) are never picked.
	if i, _ := p.Pick(func(_ int, e Endpoint) bool { return e.Index == 0 }); i == 0 {
		t.Fatal("picked a skipped endpoint")
	}
	if _, ok := p.Pick(func(int, Endpoint) bool { return true }); ok {
		t.Fatal("picked although every endpoint is skipped")
	}
}

// FuzzLookup checks that any host and path are matched without panics,
// that a match is a route of the table, and that matching ignores case and
// ports in the host.
func FuzzLookup(f *testing.F) {
	table := Build([]Entry{
		{Route: "hello.apps.localhost", Endpoint: ep("hello", 0)},
		{Route: "hello.apps.localhost/api", Endpoint: ep("api", 0)},
		{Route: "*.apps.localhost/admin", Endpoint: ep("admin", 0)},
		{Route: "*.localhost", Endpoint: ep("any", 0)},
	})
	for _, seed := range [][2]string{
		{"hello.apps.localhost", "/"}, {"HELLO.apps.localhost:80", "/api/x"}, {"x.apps.localhost", "/admin"},
		{"", ""}, {".", "/"}, {"*.localhost", "/"}, {"a..localhost", "//"}, {"[::1]:80", "/"}, {"hello.apps.localhost.", "/api?x"},
	} {
		f.Add(seed[0], seed[1])
	}
	routes := map[string]bool{}
	for _, r := range table.Routes() {
		routes[r] = true
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		p := table.Lookup(host, path)
		if p != nil && !routes[p.Route] {
			t.Fatalf("Lookup(%q, %q) = %q, not a route of the table", host, path, p.Route)
		}
		if !isASCII(host) {
			return // Unicode case mapping is not symmetric; hosts are ASCII (IDNA)
		}
		if q := table.Lookup(strings.ToUpper(host), path); (p == nil) != (q == nil) || (p != nil && p.Route != q.Route) {
			t.Fatalf("Lookup depends on the host's case: %q", host)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
