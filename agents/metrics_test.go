package agents

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

func TestNextUsage(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		prev *model.InstanceUsage
		st   runtime.Stats
		now  time.Time
		want model.InstanceUsage
	}{
		{"first read: no percentage", nil, runtime.Stats{CPU: 1500 * time.Millisecond, MemoryBytes: 10 << 20}, t0,
			model.InstanceUsage{At: t0, CPUSeconds: 1.5, MemoryBytes: 10 << 20}},
		{"half a core over two seconds", &model.InstanceUsage{At: t0, CPUSeconds: 1.5, DiskBytes: 4096},
			runtime.Stats{CPU: 2500 * time.Millisecond, MemoryBytes: 11 << 20}, t0.Add(2 * time.Second),
			model.InstanceUsage{At: t0.Add(2 * time.Second), CPUSeconds: 2.5, CPUPercent: 50, MemoryBytes: 11 << 20, DiskBytes: 4096}},
		{"two cores busy", &model.InstanceUsage{At: t0, CPUSeconds: 1},
			runtime.Stats{CPU: 11 * time.Second}, t0.Add(5 * time.Second),
			model.InstanceUsage{At: t0.Add(5 * time.Second), CPUSeconds: 11, CPUPercent: 200}},
		{"CPU time going back (a new container): no percentage", &model.InstanceUsage{At: t0, CPUSeconds: 9},
			runtime.Stats{CPU: time.Second}, t0.Add(time.Second),
			model.InstanceUsage{At: t0.Add(time.Second), CPUSeconds: 1}},
		{"the same instant: no percentage", &model.InstanceUsage{At: t0, CPUSeconds: 1},
			runtime.Stats{CPU: 2 * time.Second}, t0, model.InstanceUsage{At: t0, CPUSeconds: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextUsage(tt.prev, tt.st, tt.now); got != tt.want {
				t.Fatalf("nextUsage = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPerIndex(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	st := func(guid, process string, index int, state model.InstanceState, since time.Time) model.InstanceStatus {
		return model.InstanceStatus{InstanceRef: model.InstanceRef{GUID: guid, Space: "dev", App: "hello", Process: process, Index: index},
			State: state, Since: since}
	}
	tests := []struct {
		name string
		in   []model.InstanceStatus
		want map[string]string // index key → guid
	}{
		{"one each", []model.InstanceStatus{st("a", "", 0, model.StateRunning, t0), st("b", "worker", 0, model.StateStarting, t0)},
			map[string]string{"web/0": "a", "worker/0": "b"}},
		{"running beats a newer starting one (a rollout)", []model.InstanceStatus{st("old", "", 0, model.StateRunning, t0),
			st("new", "", 0, model.StateStarting, t0.Add(time.Second))}, map[string]string{"web/0": "old"}},
		{"the newer of two crashed", []model.InstanceStatus{st("c1", "", 1, model.StateCrashed, t0),
			st("c2", "", 1, model.StateCrashed, t0.Add(time.Second))}, map[string]string{"web/1": "c2"}},
		{"stopping ones count for nothing", []model.InstanceStatus{st("s", "", 2, model.StateStopping, t0)}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			for k, s := range perIndex(tt.in) {
				got[fmt.Sprintf("%s/%d", k.process, k.index)] = s.GUID
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("perIndex = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeUsage reads made-up usage: each read adds a second of CPU time.
type fakeUsage struct {
	mu    sync.Mutex
	reads map[string]int
	disk  int
}

func (u *fakeUsage) Stats(_ context.Context, id string) (runtime.Stats, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if id == "gone" {
		return runtime.Stats{}, fmt.Errorf("reading: %w", runtime.ErrNotFound)
	}
	u.reads[id]++
	return runtime.Stats{CPU: time.Duration(u.reads[id]) * time.Second, MemoryBytes: 32 << 20}, nil
}

func (u *fakeUsage) DiskUsage(context.Context, string) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.disk++
	return 8192, nil
}

// TestCellMetrics runs instances on fakes with a registry: usage lands in
// the instance's status (heartbeats) and in series labelled by index
// only, which go with the instance; launch steps, startup checks and
// restarts are counted.
func TestCellMetrics(t *testing.T) {
	c := newTestCell(t)
	reg := prometheus.NewRegistry()
	m, err := newCellMetrics(reg, c.Agent)
	if err != nil {
		t.Fatal(err)
	}
	c.metrics = m
	fu := &fakeUsage{reads: map[string]int{}}
	c.usage.reader = fu

	c.start(t, "a")
	c.waitState(t, "a", model.StateRunning)
	c.readUsage(context.Background())
	c.readUsage(context.Background())
	hb := c.Heartbeat()
	if len(hb.Instances) != 1 || hb.Instances[0].Usage == nil {
		t.Fatalf("heartbeat carries no usage: %+v", hb.Instances)
	}
	if u := hb.Instances[0].Usage; u.CPUSeconds != 2 || u.MemoryBytes != 32<<20 || u.DiskBytes != 8192 || u.CPUPercent <= 0 {
		t.Fatalf("usage %+v, want 2 CPU seconds, 32 MB, 8192 disk bytes and a percentage", u)
	}
	if fu.disk != 1 {
		t.Fatalf("disk read %d times in two reads, want once (every %s)", fu.disk, diskEvery)
	}
	labels := "app=hello,index=0,process=web,space=dev"
	want := map[string]float64{
		"driftless_instance_cpu_seconds_total{" + labels + "}":                           2,
		"driftless_instance_memory_bytes{" + labels + "}":                                32 << 20,
		"driftless_instance_memory_limit_bytes{" + labels + "}":                          64 << 20,
		"driftless_instance_disk_bytes{" + labels + "}":                                  8192,
		"driftless_instance_restarts_total{" + labels + "}":                              0,
		"driftless_cell_health_checks_total{check=startup,result=passed}":                1,
		"driftless_cell_launch_step_duration_seconds_count{result=ok,step=host_port}":    1,
		"driftless_cell_launch_step_duration_seconds_count{result=ok,step=health_check}": 1,
		"driftless_cell_launch_step_duration_seconds_count{result=ok,step=registration}": 1,
	}
	got := testenv.Samples(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}

	// The instance goes, and its series with it; a new one at its index
	// is a restart.
	c.stop("a")
	c.waitState(t, "a", "")
	for k := range testenv.Samples(t, reg) {
		if strings.HasPrefix(k, "driftless_instance_") {
			t.Fatalf("series %s left after the instance went", k)
		}
	}
	c.probe.mu.Lock()
	c.probe.err = errors.New("no answer")
	c.probe.mu.Unlock()
	c.start(t, "b")
	c.waitState(t, "b", model.StateCrashed)
	got = testenv.Samples(t, reg)
	for k, v := range map[string]float64{
		"driftless_instance_restarts_total{" + labels + "}":                                  1,
		"driftless_cell_health_checks_total{check=startup,result=failed}":                    1,
		"driftless_cell_launch_step_duration_seconds_count{result=failed,step=health_check}": 1,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["driftless_instance_cpu_seconds_total{"+labels+"}"]; ok {
		t.Errorf("a crashed instance never read has CPU series: %v", got)
	}
}
