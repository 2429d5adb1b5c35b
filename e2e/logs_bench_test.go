package e2e

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/model"
)

// BenchmarkLogs measures kept logs on a real `driftless dev` (one cell,
// JetStream on dev's embedded NATS):
//   - throughput: an instance prints a burst of lines at once; lines/s from
//     the first kept line to the last, and whether every line was kept
//     (no log rate limit is set, so none may be lost);
//   - latency: one line at a time, from the app printing it to a
//     `driftless logs -f` reader (the API's follow stream) receiving it,
//     p50 and p99.
//
// Run with: go test ./e2e -run '^$' -bench Logs -benchtime 1x -timeout 30m
// (bench/logs.sh).
func BenchmarkLogs(b *testing.B) {
	p := startDev(b)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloWith(1, map[string]string{"BENCH": "logs"}, "")})
	p.commitAll("hello")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitAnswer(b, 2*time.Minute, helloHost, "hello")

	for _, burst := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("burst-%d", burst), func(b *testing.B) {
			for i := range b.N {
				tag := fmt.Sprintf("t%d-%d-%d", burst, b.N, i)
				rate, kept := logBurst(b, p, tag, burst)
				b.ReportMetric(rate, "lines/s")
				b.ReportMetric(float64(kept), "kept")
				b.ReportMetric(float64(burst-kept), "lost")
			}
		})
	}
	b.Run("write-to-follow", func(b *testing.B) {
		for range b.N {
			p50, p99 := logLatency(b, p, 200)
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		}
	})
}

// logBurst has the instance print n lines tagged tag at once and reads
// them back once all are kept (or 2 minutes passed): the rate at which
// the cell shipped them (first to last kept line) and how many were kept.
func logBurst(b *testing.B, p *platform, tag string, n int) (float64, int) {
	b.Helper()
	if code, body, err := p.get(helloHost, fmt.Sprintf("/log?n=%d&tag=%s", n, tag)); err != nil || code != 200 {
		b.Fatalf("GET /log: %d %s %v", code, body, err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	var first, last time.Time
	kept := 0
	for time.Now().Before(deadline) {
		seen := map[int]bool{}
		first, last = time.Time{}, time.Time{}
		err := p.client.Logs(context.Background(), "hello", api.LogOptions{Source: model.LogApp, Recent: n + 1000}, func(l model.LogLine) {
			f := strings.Fields(l.Text)
			if len(f) != 4 || f[0] != "logline" || f[1] != tag {
				return
			}
			i, _ := strconv.Atoi(f[2])
			seen[i] = true
			if first.IsZero() {
				first = l.Time
			}
			last = l.Time
		})
		if err != nil {
			b.Fatal(err)
		}
		if kept = len(seen); kept == n {
			break
		}
		time.Sleep(time.Second)
	}
	d := last.Sub(first)
	if d <= 0 {
		d = time.Millisecond
	}
	b.Logf("burst %s: %d of %d lines kept, shipped in %s", tag, kept, n, d)
	return float64(kept) / d.Seconds(), kept
}

// logLatency follows the app's log and has the instance print count
// lines one at a time, 50 ms apart; each line carries the time the app
// printed it.
func logLatency(b *testing.B, p *platform, count int) (p50, p99 time.Duration) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tag := fmt.Sprintf("lat%d", time.Now().UnixNano())
	var mu sync.Mutex
	var lat []time.Duration
	got := make(chan struct{}, count)
	go func() {
		_ = p.client.Logs(ctx, "hello", api.LogOptions{Follow: true, Recent: -1, Source: model.LogApp}, func(l model.LogLine) {
			f := strings.Fields(l.Text)
			if len(f) != 4 || f[1] != tag {
				return
			}
			ns, _ := strconv.ParseInt(f[3], 10, 64)
			mu.Lock()
			lat = append(lat, time.Since(time.Unix(0, ns)))
			mu.Unlock()
			got <- struct{}{}
		})
	}()
	time.Sleep(time.Second) // the follower is set up
	for i := range count {
		if code, _, err := p.get(helloHost, fmt.Sprintf("/log?n=1&tag=%s", tag)); err != nil || code != 200 {
			b.Fatalf("GET /log %d: %d %v", i, code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for range count {
		select {
		case <-got:
		case <-time.After(30 * time.Second):
			b.Fatalf("only %d of %d lines followed", len(lat), count)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100]
}
