package sim_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/driftless/driftless/agents"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
	"github.com/driftless/driftless/router"
	"github.com/driftless/driftless/router/route"
	"github.com/driftless/driftless/sim"
)

// BenchmarkScale is issue 18's scale benchmark (bench/scale.sh runs it):
// a generated repository of DRIFTLESS_SCALE_APPS apps (1,000) of
// DRIFTLESS_SCALE_INSTANCES instances (10) each, placed on
// DRIFTLESS_SCALE_CELLS hollow cells (100) through a real controller,
// NATS, Consul and router, every instance registered at one loopback
// HTTP backend. It measures, once (run it with -benchtime 1x): the time
// from the commit to every instance RUNNING in the controller's view and
// in the router's table; a one-app commit to serving its new release; a
// commit changing 10% of the apps; the loss of 10% of the cells until
// every instance runs and is routed again; the process's CPU and memory
// (controller, cells, NATS server and router share it; Consul is its own
// process), Consul writes and NATS messages per second; and the router
// table's build time at that size.
func BenchmarkScale(b *testing.B) {
	apps, instances := envInt("DRIFTLESS_SCALE_APPS", 1000), envInt("DRIFTLESS_SCALE_INSTANCES", 10)
	cells := envInt("DRIFTLESS_SCALE_CELLS", 100)
	latency := time.Duration(envInt("DRIFTLESS_SCALE_START_LATENCY_MS", 100)) * time.Millisecond
	const memoryMB = 64
	// Room for every instance with a tenth of the cells lost, and more.
	cellMB := int64(apps*instances*memoryMB/max(cells*8/10, 1)) + 1024
	quotas := fmt.Sprintf("default:\n  memory: %dG\n  instances: %d\n  instance_memory: 2G\n  routes: %d\n  services: 10\n",
		apps*instances*memoryMB/1024+10, apps*instances+10, apps+10)
	pols, err := policies.Load(context.Background(), fstest.MapFS{"quotas.yml": {Data: []byte(quotas)}})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		renew := time.Duration(envInt("DRIFTLESS_SCALE_RENEW_INTERVAL_MS", 15000)) * time.Millisecond
		p := newSimPlatform(b, platformOptions{policies: pols, scale: true, renew: renew,
			cellTTL: agents.DefaultCellTTL, consulAgents: envInt("DRIFTLESS_SCALE_CONSUL_AGENTS", 10)})
		backend := startBackend(b)
		p.ports = sim.Ports(backend, 0)
		rt := startRouter(b, p)
		p.startCells("hollow-", cells, cellMB, latency)
		time.Sleep(2 * time.Second) // the controller's warm-up: every cell has reported

		res := &scaleResult{b: b, p: p}
		res.phase(fmt.Sprintf("commit of %d apps × %d → all RUNNING and routed", apps, instances), func() {
			p.commit(appFiles("app", apps, instances, memoryMB), "apps")
			res.waitAll(rt, apps, instances, "", 15*time.Minute)
		})
		res.phase("one-app commit (new source) → its new release serving", func() {
			start := time.Now()
			first := firstServing(rt, "app0", 5*time.Minute)
			committed := p.commit(map[string]string{"apps/app0/app": "hollow app0, changed"}, "one app")
			applied := time.Since(committed)
			res.waitAll(rt, apps, instances, "", 5*time.Minute)
			// From the git commit made (the bench's git add and commit of a
			// 2,000-file tree are not the platform's).
			res.marks += fmt.Sprintf("; its first new instance routed %.2f s after the git commit (commit applied %.2f s, %s)",
				((<-first) - committed.Sub(start)).Seconds(), applied.Seconds(), firstEvents(p, "app0", committed))
		})
		changed := max(apps/10, 1)
		res.phase(fmt.Sprintf("commit changing %d apps → their new releases serving", changed), func() {
			files := map[string]string{}
			for i := range changed {
				files[fmt.Sprintf("apps/app%d/app", i)] = fmt.Sprintf("hollow app%d, changed twice", i)
			}
			p.commit(files, "ten percent")
			res.waitAll(rt, apps, instances, "", 10*time.Minute)
		})
		lost := max(cells/10, 1)
		res.phase(fmt.Sprintf("loss of %d cells → all RUNNING and routed again", lost), func() {
			for i := 1; i <= lost; i++ {
				p.kill(fmt.Sprintf("hollow-%d", i))
			}
			res.waitAll(rt, apps, instances, "hollow-", 10*time.Minute, lost)
		})
		res.tableBuild(apps, instances)
		res.report()
	}
}

// firstServing reports how long after its call the router's table first
// holds an endpoint of app of a release it did not hold at the call
// (0 if none within timeout).
func firstServing(rt *router.Router, app string, timeout time.Duration) <-chan time.Duration {
	host := app + ".apps.localhost"
	old := map[string]bool{}
	if pool := rt.Table().Lookup(host, "/"); pool != nil {
		for _, e := range pool.Endpoints {
			old[e.ReleaseID] = true
		}
	}
	out := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		for time.Since(start) < timeout {
			if pool := rt.Table().Lookup(host, "/"); pool != nil {
				for _, e := range pool.Endpoints {
					if !old[e.ReleaseID] {
						out <- time.Since(start)
						return
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
		out <- 0
	}()
	return out
}

// firstEvents says when, after start, app's first events of the kinds
// of a release's way to serving were recorded.
func firstEvents(p *simPlatform, app string, start time.Time) string {
	kinds := []model.EventKind{model.EventStaging, model.EventStaged, model.EventPlaced, model.EventStarted}
	first := map[model.EventKind]time.Time{}
	for _, ev := range p.ctl.Events("dev", app) {
		if ev.Time.After(start) && (first[ev.Kind].IsZero() || ev.Time.Before(first[ev.Kind])) {
			first[ev.Kind] = ev.Time
		}
	}
	var out []string
	for _, k := range kinds {
		if t := first[k]; !t.IsZero() {
			out = append(out, fmt.Sprintf("%s %.2f s", k, t.Sub(start).Seconds()))
		}
	}
	return "first events: " + strings.Join(out, ", ")
}

// startBackend serves 200 on a loopback port for every hollow instance.
func startBackend(b *testing.B) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("hollow\n")) }),
		ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// startRouter runs a router on the platform's Consul.
func startRouter(b *testing.B, p *simPlatform) *router.Router {
	r, err := router.New(router.Config{Listen: "127.0.0.1:0", Consul: p.cc, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Run(ctx)
	}()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case <-r.Ready():
	case <-time.After(30 * time.Second):
		b.Fatal("router not ready")
	}
	return r
}

// scaleResult collects the phases' measures.
type scaleResult struct {
	b     *testing.B
	p     *simPlatform
	lines []string
	// marks are the last waitAll's milestones.
	marks string
}

// phase runs f and records its time, the process's CPU time, its peak
// heap, and Consul writes and NATS messages per second meanwhile. With
// DRIFTLESS_SCALE_PROFILE set to a directory, it writes the process's CPU
// profile of the phase there (phase-N.cpu).
func (r *scaleResult) phase(name string, f func()) {
	if dir := os.Getenv("DRIFTLESS_SCALE_PROFILE"); dir != "" {
		path := filepath.Join(dir, fmt.Sprintf("phase-%d.cpu", len(r.lines)+1))
		out, err := os.Create(path)
		if err != nil {
			r.b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(out); err != nil {
			r.b.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = out.Close()
		}()
	}
	cpu0, w0, raft0 := cpuTime(), r.p.writes.Load(), raftIndex(r.p.cc)
	in0, out0 := r.p.nats.Server.Messages()
	start := time.Now()
	f()
	took := time.Since(start)
	in1, out1 := r.p.nats.Server.Messages()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	secs := took.Seconds()
	line := fmt.Sprintf("%-62s %8.2f s  cpu %6.1f s  heap %5d MB  consul PUTs %6.0f/s raft %6.0f/s  nats in %7.0f/s out %7.0f/s",
		name, secs, (cpuTime() - cpu0).Seconds(), ms.HeapInuse>>20, float64(r.p.writes.Load()-w0)/secs,
		float64(raftIndex(r.p.cc)-raft0)/secs, float64(in1-in0)/secs, float64(out1-out0)/secs)
	if r.marks != "" {
		line += "\n    (" + r.marks + ")"
		r.marks = ""
	}
	r.lines = append(r.lines, line)
	fmt.Fprintln(os.Stderr, line)
}

// waitAll waits until every app runs instances of its current release
// in the controller's view and in the router's table, none on a cell
// among the first lost ones named prefix1…, and records when every app
// was staged, when every instance ran, and when every one was routed.
func (r *scaleResult) waitAll(rt *router.Router, apps, instances int, prefix string, timeout time.Duration, lost ...int) {
	gone := map[string]bool{}
	for _, n := range lost {
		for i := 1; i <= n; i++ {
			gone[fmt.Sprintf("%s%d", prefix, i)] = true
		}
	}
	start := time.Now()
	deadline := start.Add(timeout)
	last, said, reached := "", time.Now(), levelNone
	var marks []string
	for time.Now().Before(deadline) {
		var level settleLevel
		last, level = r.settled(rt, apps, instances, gone)
		for ; reached < level; reached++ {
			marks = append(marks, fmt.Sprintf("%s %.2f s", levelNames[reached+1], time.Since(start).Seconds()))
		}
		if level == levelDone {
			r.marks = strings.Join(marks, ", ")
			return
		}
		if time.Since(said) > 10*time.Second {
			fmt.Fprintln(os.Stderr, "  waiting:", last)
			said = time.Now()
		}
		// Not more often: AppStates is the controller's whole view, and
		// the benchmark's looking must not cost what it measures.
		time.Sleep(250 * time.Millisecond)
	}
	r.b.Fatalf("not settled after %s: %s", timeout, last)
}

// settleLevel is how far every app has come: its release staged and
// current, then its instances RUNNING, then routed (settled).
type settleLevel int

const (
	levelNone settleLevel = iota
	levelStaged
	levelRunning
	levelRouted
	levelDone = levelRouted
)

// levelNames name the levels for the phase's milestones.
var levelNames = map[settleLevel]string{levelStaged: "staged", levelRunning: "running", levelRouted: "routed"}

// settled says what is not yet as wanted ("" when all is) and the level
// every app has reached.
func (r *scaleResult) settled(rt *router.Router, apps, instances int, gone map[string]bool) (string, settleLevel) {
	states := r.p.ctl.AppStates(context.Background())
	if len(states) != apps {
		return fmt.Sprintf("%d apps stored, want %d", len(states), apps), levelNone
	}
	tbl := rt.Table()
	worst, what := levelDone, ""
	note := func(l settleLevel, msg string) {
		if l < worst {
			worst, what = l, msg
		}
	}
	for _, a := range states {
		cur := a.App.CurrentID
		if cur == "" || cur != a.App.ReleaseID {
			note(levelNone, fmt.Sprintf("%s: release %s not current yet", a.App.Name, a.App.ReleaseID))
			continue
		}
		n := 0
		for _, in := range a.Instances {
			if in.State == model.StateRunning && in.ReleaseID == cur && !gone[in.Cell] {
				n++
			}
		}
		if n != instances || len(gone) == 0 && len(a.Instances) != instances {
			note(levelStaged, fmt.Sprintf("%s: %d of %d instances RUNNING release %s (%d in all)", a.App.Name, n, instances, cur, len(a.Instances)))
			continue
		}
		pool := tbl.Lookup(a.App.Name+".apps.localhost", "/")
		if pool == nil {
			note(levelRunning, a.App.Name+": not in the router's table")
			continue
		}
		n = 0
		for _, e := range pool.Endpoints {
			if e.ReleaseID == cur {
				n++
			}
		}
		if n != instances || len(pool.Endpoints) != instances {
			note(levelRunning, fmt.Sprintf("%s: router has %d endpoints, %d of release %s", a.App.Name, len(pool.Endpoints), n, cur))
		}
	}
	if worst == levelDone {
		return "", levelDone
	}
	return what, worst
}

// tableBuild times route.Build over a table of apps × instances.
func (r *scaleResult) tableBuild(apps, instances int) {
	entries := make([]route.Entry, 0, apps*instances)
	for a := range apps {
		for i := range instances {
			ep := route.Endpoint{Addr: fmt.Sprintf("127.0.0.1:%d", 20000+a*instances+i)}
			ep.GUID, ep.Space, ep.App, ep.Index = fmt.Sprintf("g-%d-%d", a, i), "dev", fmt.Sprintf("app%d", a), i
			entries = append(entries, route.Entry{Route: fmt.Sprintf("app%d.apps.localhost", a), Endpoint: ep})
		}
	}
	const rounds = 20
	start := time.Now()
	for range rounds {
		_ = route.Build(entries)
	}
	line := fmt.Sprintf("router table build with %d instances: %.2f ms", len(entries), float64(time.Since(start).Microseconds())/1000/rounds)
	if r.marks != "" {
		line += "\n    (" + r.marks + ")"
		r.marks = ""
	}
	r.lines = append(r.lines, line)
	fmt.Fprintln(os.Stderr, line)
}

func (r *scaleResult) report() {
	fmt.Fprintln(os.Stderr, "summary (settled):")
	for _, l := range r.lines {
		fmt.Fprintln(os.Stderr, l)
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
