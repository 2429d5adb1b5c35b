package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// processesManifest is hello with web instances, a worker with its own
// command, count and memory, and a clock whose command is the Procfile's.
func processesManifest(web, workers int) string {
	return helloWith(web, map[string]string{"GREETING": "Hello"}, fmt.Sprintf(`  processes:
  - type: worker
    instances: %d
    memory: 16M
    command: while true; do echo "worker $CF_INSTANCE_INDEX is $DRIFTLESS_PROCESS"; sleep 1; done
  - type: clock
    memory: 16M
`, workers))
}

// procfile gives the clock type its command.
const procfile = "clock: while true; do echo \"tick from $DRIFTLESS_PROCESS\"; sleep 1; done\n"

// TestProcessTypes deploys an app with web, worker and clock process
// types from one droplet: each type runs its own count with its own
// command (the clock's from the Procfile), only web is routed, scaling one
// type restarts no instance of another and keeps the release, a crashed
// worker is restarted as the worker's index, and `driftless app` shows
// the types.
func TestProcessTypes(t *testing.T) {
	p := startDev(t)
	p.write(map[string]string{"apps/hello/manifest.yml": processesManifest(1, 2), "apps/hello/Procfile": procfile})
	p.addHello("apps/hello")
	p.commitAll("hello with a worker and a clock")
	_, _ = p.client.Sync(context.Background(), false, 0)
	d := p.waitProcesses(t, 2*time.Minute, map[string]int{"web": 1, "worker": 2, "clock": 1})
	release := d.ReleaseID
	before := guidsByIndex(d)
	p.waitAnswer(t, 30*time.Second, helloHost, "Hello")

	// Only web instances are routed.
	seen, err := p.sample(helloHost, 6)
	if err != nil {
		t.Fatal(err)
	}
	for guid := range seen {
		if guid != before["0"] {
			t.Fatalf("the router sent a request to %s, not to web's instance %s (%v)", guid, before["0"], before)
		}
	}
	// Each type runs its command: the worker the manifest's, the clock
	// the Procfile's.
	testenv.Eventually(t, 30*time.Second, time.Second, "logs of worker and clock", func() error {
		out, err := p.cli("logs", "hello", "--recent")
		if err != nil {
			return err
		}
		for _, want := range []string{"[APP/worker/1] worker 1 is worker", "[APP/clock/0] tick from clock"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("no %q in\n%s", want, out)
			}
		}
		return nil
	})
	out, err := p.cli("app", "hello")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"web 1/1, worker 2/2, clock 1/1 running", "worker/1", "clock/0"} {
		if !strings.Contains(out, want) {
			t.Fatalf("`driftless app hello` has no %q:\n%s", want, out)
		}
	}

	// Scaling the worker down stops worker/1 only.
	p.write(map[string]string{"apps/hello/manifest.yml": processesManifest(1, 1)})
	p.commitAll("one worker")
	_, _ = p.client.Sync(context.Background(), false, 0)
	d = p.waitProcesses(t, time.Minute, map[string]int{"web": 1, "worker": 1, "clock": 1})
	after := guidsByIndex(d)
	for _, k := range []string{"0", "worker/0", "clock/0"} {
		if after[k] != before[k] {
			t.Fatalf("scaling the worker replaced instance %s: %v → %v", k, before, after)
		}
	}
	if d.ReleaseID != release {
		t.Fatalf("scaling the worker made release %s (was %s)", d.ReleaseID, release)
	}

	// Scaling web up leaves the worker and clock alone.
	p.write(map[string]string{"apps/hello/manifest.yml": processesManifest(2, 1)})
	p.commitAll("two web instances")
	_, _ = p.client.Sync(context.Background(), false, 0)
	d = p.waitProcesses(t, time.Minute, map[string]int{"web": 2, "worker": 1, "clock": 1})
	again := guidsByIndex(d)
	for _, k := range []string{"0", "worker/0", "clock/0"} {
		if again[k] != before[k] {
			t.Fatalf("scaling web replaced instance %s: %v → %v", k, before, again)
		}
	}

	// A worker that dies is restarted as worker/0, with the crash on the
	// worker's index; web's instances stay.
	var worker string
	for _, c := range p.containers(t) {
		if c["driftless.guid"] == before["worker/0"] {
			worker = c["id"]
		}
	}
	if worker == "" {
		t.Fatalf("no container for worker/0 (%s) in %v", before["worker/0"], p.containers(t))
	}
	p.killTask(t, worker)
	testenv.Eventually(t, time.Minute, time.Second, "worker/0 replaced", func() error {
		d, err := p.client.App(context.Background(), "dev", "hello")
		if err != nil {
			return err
		}
		now := guidsByIndex(d)
		if now["worker/0"] == before["worker/0"] || now["worker/0"] == "" {
			return fmt.Errorf("worker/0 is %q (was %s)", now["worker/0"], before["worker/0"])
		}
		if now["0"] != before["0"] || now["1"] != again["1"] {
			return fmt.Errorf("web instances changed with the worker's crash: %v → %v", again, now)
		}
		if !slices.ContainsFunc(d.Crashes, func(c api.Crash) bool { return c.Process == "worker" && c.Index == 0 }) {
			return fmt.Errorf("no crash of worker/0 in %+v", d.Crashes)
		}
		return nil
	})
}

// waitProcesses waits until the app hello runs want instances of each
// process type, all of its current release, and returns its detail.
func (p *platform) waitProcesses(t testing.TB, timeout time.Duration, want map[string]int) api.AppDetail {
	t.Helper()
	var d api.AppDetail
	testenv.Eventually(t, timeout, time.Second, fmt.Sprintf("process types %v", want), func() error {
		var err error
		d, err = p.client.App(context.Background(), "dev", "hello")
		if err != nil {
			return err
		}
		got := map[string]int{}
		for _, pr := range d.Processes {
			if pr.Running != pr.Desired {
				return fmt.Errorf("%s: %d of %d running (%s, problems %q)", pr.Type, pr.Running, pr.Desired, d.State, d.Problems)
			}
			got[pr.Type] = pr.Desired
		}
		if !maps.Equal(got, want) || d.State != api.AppRunning {
			return fmt.Errorf("processes %+v, state %s, want %v running", d.Processes, d.State, want)
		}
		active := map[string]int{}
		for _, in := range d.Instances {
			if in.State.Active() {
				active[model.ProcessOf(in.Process)]++
			}
		}
		if !maps.Equal(active, want) {
			return fmt.Errorf("active instances %v, want %v", active, want)
		}
		return nil
	})
	return d
}

// guidsByIndex maps the app's running instances by index name ("0",
// "worker/0") to their GUIDs.
func guidsByIndex(d api.AppDetail) map[string]string {
	out := map[string]string{}
	for _, in := range d.Instances {
		if in.State == model.StateRunning {
			out[model.IndexKey{Process: in.Process, Index: in.Index}.String()] = in.GUID
		}
	}
	return out
}
