package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// BenchmarkProxy measures a request through the proxy to a loopback
// backend, against the same request sent to the backend directly
// (BenchmarkDirect): the ratio is the proxy's cost.
func BenchmarkProxy(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer app.Close()
	var table route.Current
	table.Store(route.Build([]route.Entry{{Route: "bench.apps.localhost", Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "1", App: "bench"}, Addr: app.Listener.Addr().String()}}}))
	front := httptest.NewServer(New(&table, Config{}, nil))
	defer front.Close()
	run(b, front.URL, "bench.apps.localhost")
}

// BenchmarkFastPath is BenchmarkProxy through the HTTP/1.1 fast path
// (the router's plain listener) rather than net/http.
func BenchmarkFastPath(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer app.Close()
	addr, _ := startFast(b, drivers[0], []route.Entry{{Route: "bench.apps.localhost", Endpoint: route.Endpoint{InstanceRef: model.InstanceRef{GUID: "1", App: "bench"}, Addr: app.Listener.Addr().String()}}}, Config{})
	run(b, "http://"+addr, "bench.apps.localhost")
}

// BenchmarkDirect is BenchmarkProxy's baseline: no proxy in between.
func BenchmarkDirect(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer app.Close()
	run(b, app.URL, "bench.apps.localhost")
}

func run(b *testing.B, url, host string) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url+"/", nil)
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
