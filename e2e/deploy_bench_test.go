package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
)

// BenchmarkDeploy measures, on a real `driftless dev`:
//   - commit-to-first-answer: from `git commit` + POST /v1/sync to the first
//     router answer from the new release (staging, placement, pull, start,
//     health check, Consul, router);
//   - instance-create-to-healthy: from the controller's start decision to
//     the instance passing its health check (agent-side, from events).
//
// Run with: go test ./e2e -run '^$' -bench Deploy -benchtime 10x
func BenchmarkDeploy(b *testing.B) {
	p := startDev(b)
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "G0")})
	p.addHello("apps/hello")
	p.commitAll("hello")
	p.waitServing(b, 120*time.Second, 2, func(info) error { return nil })
	ctx := context.Background()

	b.Run("commit-to-first-answer", func(b *testing.B) {
		var samples []time.Duration
		for i := range b.N {
			g := fmt.Sprintf("G%d-%d", b.N, i)
			p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, g)})
			p.commitAll(g)
			start := time.Now()
			if _, err := p.client.Sync(ctx, false, 0); err != nil {
				b.Fatal(err)
			}
			if err := pollAnswer(p, 60*time.Second, func(in info) bool { return in.Greeting == g }); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(start))
			p.waitServing(b, 60*time.Second, 2, func(in info) error {
				if in.Greeting != g {
					return fmt.Errorf("old release still serving")
				}
				return nil
			})
		}
		report(b, samples)
	})

	b.Run("instance-create-to-healthy", func(b *testing.B) {
		var samples []time.Duration
		g := fmt.Sprintf("G%d-%d", b.N-1, b.N-1)
		for i := range b.N {
			n := 3 + i%2 // alternate 3 and 4 instances: every other round starts one
			if i%2 == 1 {
				p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, g)})
				p.commitAll("scale down")
				_, _ = p.client.Sync(ctx, false, 0)
				p.waitServing(b, 60*time.Second, 2, func(info) error { return nil })
			}
			before, err := p.client.App(ctx, "dev", "hello")
			if err != nil {
				b.Fatal(err)
			}
			known := map[string]bool{}
			for _, in := range before.Instances {
				known[in.GUID] = true
			}
			p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(n, g)})
			p.commitAll("scale up")
			_, _ = p.client.Sync(ctx, false, 0)
			p.waitServing(b, 60*time.Second, n, func(info) error { return nil })
			d, err := p.client.App(ctx, "dev", "hello")
			if err != nil {
				b.Fatal(err)
			}
			evs, err := p.client.Events(ctx, "dev", "hello")
			if err != nil {
				b.Fatal(err)
			}
			for _, in := range d.Instances {
				if known[in.GUID] {
					continue
				}
				i := slices.IndexFunc(evs, func(e model.Event) bool { return e.Kind == "placed" && e.Instance == in.GUID })
				if i < 0 {
					b.Fatalf("no placed event for %s", in.GUID)
				}
				samples = append(samples, in.Since.Sub(evs[i].Time))
			}
		}
		report(b, samples)
	})
}

// pollAnswer asks the router every 10 ms until an answer satisfies ok.
func pollAnswer(p *platform, timeout time.Duration, ok func(info) bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		code, body, err := p.get(helloHost, "/info")
		if err == nil && code == http.StatusOK {
			var in info
			if json.Unmarshal(body, &in) == nil && ok(in) {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no matching answer within %s", timeout)
}

// report logs every sample and reports the median.
func report(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	b.Logf("samples: %v", samples)
	b.ReportMetric(samples[len(samples)/2].Seconds(), "median-s")
	b.ReportMetric(samples[0].Seconds(), "min-s")
	b.ReportMetric(samples[len(samples)-1].Seconds(), "max-s")
}
