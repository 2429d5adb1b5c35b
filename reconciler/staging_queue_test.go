package reconciler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/decide"
)

// gatedStaging answers staging requests as fakeStaging does, once open is
// closed: until then every worker waits, as behind a slow buildpack.
type gatedStaging struct {
	open chan struct{}
	mu   sync.Mutex
	n    int
}

func (g *gatedStaging) Stage(ctx context.Context, req bus.StageRequest, timeout time.Duration) (bus.StageResult, error) {
	select {
	case <-g.open:
	case <-ctx.Done():
		return bus.StageResult{}, ctx.Err()
	}
	g.mu.Lock()
	g.n++
	g.mu.Unlock()
	return fakeStaging{}.Stage(ctx, req, timeout)
}

// manyApps stores n apps of source "apps", each asking for an unstaged
// release whose source is its own folder of the returned commit.
func manyApps(t *testing.T, h *harness, n int) (commit, []model.Release) {
	t.Helper()
	ctx := context.Background()
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("apps/a%d/bin", i)] = fmt.Sprintf("binary %d", i)
	}
	c := newCommit("c1", files)
	rels := make([]model.Release, 0, n)
	for i := range n {
		name, path := fmt.Sprintf("a%d", i), fmt.Sprintf("apps/a%d", i)
		tree, err := c.TreeHash(path, decide.SourceExcludes...)
		if err != nil {
			t.Fatal(err)
		}
		rel := model.Release{ID: "r-" + name, Space: "dev", App: name, Commit: "c1", SourcePath: path, SourceTree: tree,
			Buildpacks: []string{"binary_buildpack"}, State: model.ReleaseStaging, CreatedAt: time.Now()}
		if err := h.c.store.PutRelease(ctx, rel); err != nil {
			t.Fatal(err)
		}
		if err := h.c.store.PutApp(ctx, model.App{Space: "dev", Name: name, Source: "apps", Instances: 1, ReleaseID: rel.ID}); err != nil {
			t.Fatal(err)
		}
		rels = append(rels, rel)
	}
	return c, rels
}

// idle waits (up to a minute) until the stager has no job pending or
// staging.
func idle(t *testing.T, h *harness) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		h.c.stager.mu.Lock()
		n := len(h.c.stager.inJob)
		h.c.stager.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d releases still pending or staging after a minute", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unstaged counts the apps whose release git asks for has no droplet.
func unstaged(h *harness) int {
	n := 0
	for _, a := range h.c.store.Apps() {
		if !h.c.store.Release(a.Key(), a.ReleaseID).Staged() {
			n++
		}
	}
	return n
}

// TestStagingQueueKeepsEveryRelease: however many releases one commit
// asks for while the workers are busy (more than the 1,024 the queue once
// held, which left the rest "staging" for good), every one is staged; a
// release whose droplet could not be recorded is staged again on sync
// (and by the periodic requeue) as the warning promises, unless its
// source changed at the last commit.
func TestStagingQueueKeepsEveryRelease(t *testing.T) {
	tests := []struct {
		name string
		apps int
		// refuse makes the store refuse the first write of each release
		// staged (the droplet is not recorded).
		refuse bool
		// changed is a last commit where the apps' sources differ.
		changed bool
		// wantQueued is what queue returns, wantRequeued what a sync
		// queues again, wantUnstaged what stays unstaged in the end.
		wantQueued, wantRequeued, wantUnstaged int
	}{
		{name: "three times the old queue", apps: 3000, wantQueued: 3000},
		{name: "droplets not recorded: a sync stages them again", apps: 50, refuse: true, wantQueued: 50, wantRequeued: 50},
		{name: "sources changed since: left to the next commit", apps: 20, refuse: true, changed: true, wantQueued: 20, wantUnstaged: 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			gate := &gatedStaging{open: make(chan struct{})}
			h.c.stager.req = gate
			c1, rels := manyApps(t, h, tt.apps)
			var refusedMu sync.Mutex
			refused := map[string]bool{}
			if tt.refuse {
				h.kv.Refuse(func(key string) error {
					if !strings.HasPrefix(key, "driftless/releases/") {
						return nil
					}
					refusedMu.Lock()
					defer refusedMu.Unlock()
					if refused[key] {
						return nil
					}
					refused[key] = true
					return errors.New("consul: 500 internal error")
				})
			}
			if got := h.c.stager.queue(rels, "apps", c1); got != tt.wantQueued {
				t.Fatalf("queued %d, want %d", got, tt.wantQueued)
			}
			if again := h.c.stager.queue(rels, "apps", c1); again != 0 {
				t.Errorf("queued %d again while pending, want 0", again)
			}
			close(gate.open)
			idle(t, h)
			if !tt.refuse {
				if n := unstaged(h); n != 0 {
					t.Fatalf("%d of %d releases unstaged", n, tt.apps)
				}
				return
			}
			if n := unstaged(h); n != tt.apps {
				t.Fatalf("%d unstaged after refused writes, want %d", n, tt.apps)
			}
			if tt.changed {
				files := map[string]string{}
				for i := range tt.apps {
					files[fmt.Sprintf("apps/a%d/bin", i)] = fmt.Sprintf("binary %d, changed", i)
				}
				h.c.stager.queue(nil, "apps", newCommit("c2", files))
			}
			h.c.role = RoleLeader
			h.c.Sync(context.Background(), "")
			idle(t, h)
			if n := unstaged(h); n != tt.wantUnstaged {
				t.Errorf("%d unstaged after a sync, want %d", n, tt.wantUnstaged)
			}
			gate.mu.Lock()
			defer gate.mu.Unlock()
			if want := tt.wantQueued + tt.wantRequeued; gate.n != want {
				t.Errorf("%d staging requests, want %d", gate.n, want)
			}
		})
	}
}

// TestStagingLimitFollowsCells: no more stagings run at once than the
// cells' staging slots (their heartbeats say how many), nor than
// StagingWorkers; StagingWorkers when no cell says.
func TestStagingLimitFollowsCells(t *testing.T) {
	tests := []struct {
		name    string
		slots   []int // per cell heartbeat; nil: no heartbeat
		workers int
		want    int
	}{
		{name: "the cells' slots", slots: []int{1, 2}, workers: 32, want: 3},
		{name: "capped by StagingWorkers", slots: []int{4, 4, 4}, workers: 5, want: 5},
		{name: "no cell says: StagingWorkers", workers: 4, want: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.c.cfg.StagingWorkers = tt.workers
			for i, n := range tt.slots {
				h.c.actual.Heartbeat(bus.CellHeartbeat{CellID: fmt.Sprintf("cell-%d", i), BootID: "b", StagingSlots: n}, time.Now())
			}
			gate := &countingGate{open: make(chan struct{})}
			h.c.stager.req = gate
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait() // as newHarness waits for its worker
			defer cancel()
			for range 40 { // far more workers than any limit: the limit holds them back
				wg.Go(func() { h.c.stager.work(ctx) })
			}
			c1, rels := manyApps(t, h, 20)
			h.c.stager.queue(rels, "apps", c1)
			deadline := time.Now().Add(10 * time.Second)
			for gate.waiting() < tt.want && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // room for one too many to start
			if got := gate.waiting(); got != tt.want {
				t.Fatalf("%d stagings at once, want %d", got, tt.want)
			}
			close(gate.open)
			idle(t, h)
			if n := unstaged(h); n != 0 {
				t.Fatalf("%d releases unstaged", n)
			}
			if gate.most != tt.want {
				t.Errorf("at most %d stagings at once, want %d", gate.most, tt.want)
			}
		})
	}
}

// countingGate answers staging requests once open is closed, counting
// those waiting and the most that ever waited at once.
type countingGate struct {
	open      chan struct{}
	mu        sync.Mutex
	now, most int
}

func (g *countingGate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now
}

func (g *countingGate) Stage(ctx context.Context, req bus.StageRequest, timeout time.Duration) (bus.StageResult, error) {
	g.mu.Lock()
	g.now++
	g.most = max(g.most, g.now)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.now--
		g.mu.Unlock()
	}()
	select {
	case <-g.open:
	case <-ctx.Done():
		return bus.StageResult{}, ctx.Err()
	}
	return fakeStaging{}.Stage(ctx, req, timeout)
}
