package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// BenchmarkPreview measures pull-request previews on a real `driftless
// dev` (5 samples each with -benchtime 5x):
//   - webhook-to-serving: from the POST of GitHub's "opened" delivery to
//     the first 200 from the preview's route, warm (the pull request
//     changes only vars-preview.yml, so production's droplet is reused);
//     the same pull request is opened and closed again each round, its
//     instance gone before the next;
//   - sleeping-to-first-answer: with --preview-idle 2s, from one request
//     to a sleeping preview's route (held by the router while the
//     controller wakes the app) to its 200.
//
// Run with: go test ./e2e -run '^$' -bench Preview -benchtime 5x -timeout 30m -v
func BenchmarkPreview(b *testing.B) {
	const n = 41
	host, space := previewHostOf(n), fmt.Sprintf("dev-pr-%d", n)

	p := startDev(b, "--webhook-secret", previewSecret)
	p.deployProduction(b)
	head := p.pushPR(b, previewFiles, n)
	p.closeOnCleanup(b, head, n)
	b.Run("webhook-to-serving", func(b *testing.B) {
		var samples []time.Duration
		for i := range b.N {
			id := fmt.Sprintf("bench-%d-%d", b.N, i)
			start := time.Now()
			p.openPR(b, id+"-opened", n, head)
			if err := pollPreview(p, host, head, 60*time.Second); err != nil {
				b.Fatal(err)
			}
			samples = append(samples, time.Since(start))
			p.logEvents(b, space, start)
			p.closePR(b, id+"-closed", n, head)
			p.waitRoute404(b, 30*time.Second, host)
			testenv.Eventually(b, 30*time.Second, 100*time.Millisecond, "the preview's container is gone", func() error {
				if ids := p.previewContainers(b, space); len(ids) > 0 {
					return fmt.Errorf("containers %v", ids)
				}
				return nil
			})
		}
		reportPercentiles(b, samples)
	})
	p.stop()

	q := startDev(b, "--webhook-secret", previewSecret, "--preview-idle", "2s")
	q.deployProduction(b)
	head = q.pushPR(b, previewFiles, n)
	q.closeOnCleanup(b, head, n)
	q.openPR(b, "bench-sleep-opened", n, head)
	q.waitPreviewServes(b, 90*time.Second, n, head)
	b.Run("sleeping-to-first-answer", func(b *testing.B) {
		var samples []time.Duration
		for range b.N {
			waited := time.Now()
			q.waitPreviewState(b, 60*time.Second, n, api.PreviewSleeping)
			testenv.Eventually(b, 30*time.Second, 100*time.Millisecond, "the sleeping preview's container is gone", func() error {
				if ids := q.previewContainers(b, space); len(ids) > 0 {
					return fmt.Errorf("containers %v", ids)
				}
				return nil
			})
			start := time.Now()
			code, body, err := q.getHeld(host, "/info", 60*time.Second)
			took := time.Since(start)
			var in info
			if err != nil || code != http.StatusOK || json.Unmarshal(body, &in) != nil || in.Commit != head {
				b.Fatalf("the request to the sleeping preview: %d %s (%v) after %s", code, body, err, took)
			}
			samples = append(samples, took)
			b.Logf("request sent at +%s", start.Sub(waited).Round(time.Millisecond))
			q.logEvents(b, space, waited)
		}
		reportPercentiles(b, samples)
	})
}

// pollPreview asks host every 10 ms until the pull request's code (commit
// head) answers 200.
func pollPreview(p *platform, host, head string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		code, body, err := p.get(host, "/info")
		if err == nil && code == http.StatusOK {
			var in info
			if json.Unmarshal(body, &in) == nil && in.Commit == head {
				return nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no answer from %s at %s within %s", host, head, timeout)
}

// logEvents logs the events of space since start, each with its offset
// from start: where a sample's time went.
func (p *platform) logEvents(b testing.TB, space string, start time.Time) {
	evs, err := p.client.Events(context.Background(), space, "")
	if err != nil {
		b.Logf("events: %v", err)
		return
	}
	slices.SortStableFunc(evs, func(a, b model.Event) int { return a.Time.Compare(b.Time) })
	var lines []string
	for _, e := range evs {
		if !e.Time.Before(start) {
			lines = append(lines, fmt.Sprintf("+%s %s %s: %.110s", e.Time.Sub(start).Round(time.Millisecond), e.Kind, e.App, e.Message))
		}
	}
	b.Logf("events of %s since the sample started:\n  %s", space, strings.Join(lines, "\n  "))
}

// reportPercentiles logs every sample and reports the median, p90, min
// and max.
func reportPercentiles(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	b.Logf("samples: %v", samples)
	b.ReportMetric(samples[len(samples)/2].Seconds(), "median-s")
	b.ReportMetric(samples[int(math.Ceil(0.9*float64(len(samples))))-1].Seconds(), "p90-s")
	b.ReportMetric(samples[0].Seconds(), "min-s")
	b.ReportMetric(samples[len(samples)-1].Seconds(), "max-s")
}
