package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkStaging measures, on a real `driftless dev`, commit → the new
// release answering through the router, for each example app: once cold
// (a new platform: empty build caches, stack not yet packed or pulled),
// then b.N times warm (one source file changed each time).
//
// Run with: go test ./e2e -run '^$' -bench Staging -benchtime 5x
func BenchmarkStaging(b *testing.B) {
	apps := []struct{ name, file string }{
		{"static-site", "public/index.html"},
		{"go-hello", "main.go"},
		{"python-hello", "app.py"},
		{"node-hello", "server.js"},
	}
	p := startDev(b)
	deployed := map[string]bool{} // the testing package runs each sub-benchmark more than once
	for _, app := range apps {
		b.Run(app.name, func(b *testing.B) {
			host := app.name + ".apps.localhost"
			p.addExample(app.name)
			path := filepath.Join(p.repo, "apps", app.name, app.file)
			orig, err := os.ReadFile(path)
			if err != nil {
				b.Fatal(err)
			}
			deploy := func(want string) time.Duration {
				p.commitAll(want)
				start := time.Now()
				_, _ = p.client.Sync(context.Background(), false, 0)
				deadline := start.Add(10 * time.Minute)
				for time.Now().Before(deadline) {
					code, body, err := p.get(host, "/")
					if err == nil && code == http.StatusOK && strings.Contains(string(body), want) {
						return time.Since(start)
					}
					time.Sleep(50 * time.Millisecond)
				}
				b.Fatalf("%s never answered %q", app.name, want)
				return 0
			}
			if !deployed[app.name] {
				deployed[app.name] = true
				cold := deploy("Hello from")
				b.Logf("%s cold: %s", app.name, cold.Round(10*time.Millisecond))
			}
			var samples []time.Duration
			for i := range b.N {
				want := fmt.Sprintf("Hello %d-%d from", b.N, i)
				if err := os.WriteFile(path, []byte(strings.Replace(string(orig), "Hello from", want, 1)), 0o644); err != nil {
					b.Fatal(err)
				}
				samples = append(samples, deploy(want))
			}
			report(b, samples)
		})
	}
}
