package route

import (
	"testing"

	"github.com/driftless/driftless/model"
)

// TestPoolHTTP2: a pool is HTTP2 (the fast path hands its requests to
// net/http) when any of its endpoints is reached over h2c on its route.
func TestPoolHTTP2(t *testing.T) {
	h2ep := func(guid string, h2 bool) Endpoint {
		return Endpoint{InstanceRef: model.InstanceRef{GUID: guid, App: "a"}, Addr: "127.0.0.1:1", HTTP2: h2}
	}
	tests := []struct {
		name    string
		entries []Entry
		want    bool
	}{
		{"http1 only", []Entry{{Route: "a.example.com", Endpoint: h2ep("1", false)}}, false},
		{"http2 only", []Entry{{Route: "a.example.com", Endpoint: h2ep("1", true)}}, true},
		{"mixed (a route shared by two apps)", []Entry{{Route: "a.example.com", Endpoint: h2ep("1", false)}, {Route: "a.example.com", Endpoint: h2ep("2", true)}}, true},
		{"http2 on another route only", []Entry{{Route: "a.example.com", Endpoint: h2ep("1", false)}, {Route: "b.example.com", Endpoint: h2ep("1", true)}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Build(tc.entries).Lookup("a.example.com", "/")
			if p == nil || p.HTTP2 != tc.want {
				t.Fatalf("pool %+v, want HTTP2 %v", p, tc.want)
			}
		})
	}
}
