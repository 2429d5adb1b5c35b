package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// servicesRound numbers BenchmarkServices' rounds across its runs (the
// testing package runs a benchmark with b.N = 1 first), for new names.
var servicesRound int

// warmNotes is notes-warm: an app of the notes source without a route or
// a binding, kept running so that the droplet stays in use and cached.
const warmNotes = `applications:
- name: notes-warm
  memory: 64M
  disk_quota: 256M
  buildpacks: [binary_buildpack]
  command: ./notes
  health-check-type: http
  health-check-http-endpoint: /health
  no-route: true
`

// roundNotes is warmNotes plus app name, routed at host, bound to service.
func roundNotes(name, host, service string) string {
	return warmNotes + strings.NewReplacer("name: notes\n", "name: "+name+"\n", notesHost, host).Replace(notesManifest(service)[len("applications:\n"):])
}

// BenchmarkServices measures, on a real `driftless dev --postgres`, the
// commit of a new service instance (postgresql, plan tiny, from the
// built-in broker) and of an app bound to it — the notes app under a new
// name, its droplet cached — to the first 201 answer of POST /notes
// through the router: the note was written to the new database with the
// binding's credentials. Each round then drops both (the broker
// deprovisions). Besides the median and p90 it reports, from the events,
// the median time from the commit's sync to service-provisioned,
// service-bound, placed and started.
//
// Run with: go test ./e2e -run '^$' -bench Services -benchtime 5x -timeout 30m
func BenchmarkServices(b *testing.B) {
	p := startDev(b, "--postgres")
	p.addNotes()
	p.write(map[string]string{"apps/notes/manifest.yml": warmNotes})
	p.waitApplied(b, p.commitAll("notes-warm: the droplet, staged once"), 30*time.Second)
	testenv.Eventually(b, 120*time.Second, 300*time.Millisecond, "notes-warm runs", func() error {
		a, err := p.app("notes-warm")
		if err != nil {
			return err
		}
		if a.Running != 1 {
			return fmt.Errorf("notes-warm: %s %d/%d", a.State, a.Running, a.Desired)
		}
		return nil
	})
	ctx := context.Background()

	b.Run("commit-to-first-db-answer", func(b *testing.B) {
		var samples []time.Duration
		phases := map[model.EventKind][]time.Duration{}
		for range b.N {
			servicesRound++
			app, svc := fmt.Sprintf("notes-%d", servicesRound), fmt.Sprintf("db-%d", servicesRound)
			host := app + ".apps.localhost"
			p.write(map[string]string{
				"apps/notes/manifest.yml": roundNotes(app, host, svc),
				"services.yml":            "services:\n- name: " + svc + "\n  service: postgresql\n  plan: tiny\n",
			})
			p.commitAll(app + " bound to a new " + svc)
			start := time.Now()
			if _, err := p.client.Sync(ctx, false, 0); err != nil {
				b.Fatal(err)
			}
			if err := pollNote(p, host, 120*time.Second); err != nil {
				b.Fatal(err)
			}
			took := time.Since(start)
			samples = append(samples, took)

			evs, err := p.client.Events(ctx, "dev", "")
			if err != nil {
				b.Fatal(err)
			}
			at := map[model.EventKind]time.Duration{}
			for _, e := range evs {
				ours := e.App == app || e.App == "" && strings.Contains(e.Message, "service "+svc+" ")
				if !ours || e.Time.Before(start) {
					continue
				}
				switch e.Kind {
				case model.EventServiceProvisioned, model.EventServiceBound, model.EventPlaced, model.EventStarted:
					if _, seen := at[e.Kind]; !seen {
						at[e.Kind] = e.Time.Sub(start)
					}
				}
			}
			for _, k := range benchPhases {
				if d, ok := at[k]; ok {
					phases[k] = append(phases[k], d)
				}
			}
			b.Logf("%s: first 201 after %s; %s %s, %s %s, %s %s, %s %s", app, took.Round(time.Millisecond),
				benchPhases[0], at[benchPhases[0]].Round(time.Millisecond), benchPhases[1], at[benchPhases[1]].Round(time.Millisecond),
				benchPhases[2], at[benchPhases[2]].Round(time.Millisecond), benchPhases[3], at[benchPhases[3]].Round(time.Millisecond))

			// Clean up: the app and the service go; the broker deprovisions.
			b.StopTimer()
			p.write(map[string]string{"apps/notes/manifest.yml": warmNotes, "services.yml": ""})
			p.commitAll("drop " + app + " and " + svc)
			_, _ = p.client.Sync(ctx, false, 0)
			testenv.Eventually(b, 90*time.Second, 300*time.Millisecond, svc+" deprovisioned and "+app+" gone", func() error {
				ss, err := p.services()
				if err != nil {
					return err
				}
				if len(ss) != 0 {
					return fmt.Errorf("services: %+v", ss)
				}
				if dbs := p.brokerDatabases(b); len(dbs) != 0 {
					return fmt.Errorf("the broker's databases: %v", dbs)
				}
				for _, c := range p.containers(b) {
					if strings.Contains(fmt.Sprint(c), app) {
						return fmt.Errorf("a container of %s is left: %v", app, c)
					}
				}
				return nil
			})
			b.StartTimer()
		}
		reportP90(b, "", samples)
		for _, k := range benchPhases {
			reportP90(b, string(k)+"-", phases[k])
		}
	})
}

// benchPhases are the events BenchmarkServices times from the sync.
var benchPhases = []model.EventKind{model.EventServiceProvisioned, model.EventServiceBound, model.EventPlaced, model.EventStarted}

// pollNote posts a note to host through the router every 10 ms until one
// is answered 201 (written to the app's database).
func pollNote(p *platform, host string, timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	last := ""
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		req, err := http.NewRequest(http.MethodPost, "http://"+p.http+"/notes", strings.NewReader("bench"))
		if err != nil {
			return err
		}
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			return nil
		}
		last = fmt.Sprintf("%d %.200s", resp.StatusCode, body)
	}
	return fmt.Errorf("no 201 from POST /notes on %s within %s (last: %s)", host, timeout, last)
}

// reportP90 logs the samples and reports their median and p90 (seconds),
// the metrics' names prefixed with prefix.
func reportP90(b *testing.B, prefix string, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	b.Logf("%ssamples: %v", prefix, samples)
	p90 := (len(samples)*9+9)/10 - 1
	b.ReportMetric(samples[len(samples)/2].Seconds(), prefix+"median-s")
	b.ReportMetric(samples[p90].Seconds(), prefix+"p90-s")
}
