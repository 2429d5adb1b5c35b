package route

import (
	"fmt"
	"testing"
)

func ep(app string, index int) Endpoint {
	return Endpoint{ID: fmt.Sprintf("%s-%d", app, index), Addr: fmt.Sprintf("127.0.0.1:%d", 61000+index), App: app, Space: "dev", Index: index}
}

func TestLookup(t *testing.T) {
	table := Build([]Entry{
		{"hello.apps.localhost", ep("hello", 0)},
		{"hello.apps.localhost", ep("hello", 1)},
		{"hello.apps.localhost/api", ep("api", 0)},
		{"hello.apps.localhost/api/v2/", ep("api2", 0)},
		{"Other.Apps.Localhost", ep("other", 0)},
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
	if table.Len() != 4 {
		t.Errorf("Len = %d, want 4 (%v)", table.Len(), table.Routes())
	}
}

func TestRoundRobin(t *testing.T) {
	table := Build([]Entry{{"a.x", ep("a", 2)}, {"a.x", ep("a", 0)}, {"a.x", ep("a", 1)}})
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
	c.Store(Build([]Entry{{"a.x", ep("a", 0)}}))
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
		entries = append(entries, Entry{fmt.Sprintf("app%d.apps.localhost", i), ep(fmt.Sprintf("app%d", i), 0)})
		entries = append(entries, Entry{fmt.Sprintf("app%d.apps.localhost/api", i), ep(fmt.Sprintf("api%d", i), 0)})
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
