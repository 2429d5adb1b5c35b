package agents

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/model"
)

// The cell's Prometheus metrics (docs/observability.md). Per instance
// series carry the labels space, app, process and index only, and exist
// while the cell has an instance of that index: they are made at each
// scrape from the instances the cell runs.

// instanceLabels are the labels of every per-instance series.
var instanceLabels = []string{"space", "app", "process", "index"}

// restartMemory is how long the cell remembers how often it started an
// index that it no longer runs (crash backoff keeps an index away for up
// to minutes).
const restartMemory = 30 * time.Minute

// cellMetrics are the cell's metrics. Its methods are safe on a nil
// receiver (no metrics).
type cellMetrics struct {
	steps    *prometheus.HistogramVec
	checks   *prometheus.CounterVec
	logLines prometheus.Counter
	logDrops prometheus.Counter

	// registered says the metrics are served: only then are starts
	// counted (the scrapes prune them).
	registered bool
	mu         sync.Mutex
	// starts counts the instances the cell started per index, for
	// driftless_instance_restarts_total.
	starts map[indexKey]*indexStarts
}

// indexKey names one instance index of an app's process type.
type indexKey struct {
	space, app, process string
	index               int
}

func keyOf(ref model.InstanceRef) indexKey {
	return indexKey{space: ref.Space, app: ref.App, process: model.ProcessOf(ref.Process), index: ref.Index}
}

func (k indexKey) labels() []string {
	return []string{k.space, k.app, k.process, strconv.Itoa(k.index)}
}

type indexStarts struct {
	n        int
	lastSeen time.Time
}

// newCellMetrics makes the cell's metrics and registers them, with the
// per-instance collector of a, on reg (nil: none registered).
func newCellMetrics(reg prometheus.Registerer, a *Agent) (*cellMetrics, error) {
	m := &cellMetrics{
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "driftless_cell_launch_step_duration_seconds",
			Help:    "Time each step of an instance's launch took (host_port, network, droplet, bindings, container, sidecars, health_check, registration), by result.",
			Buckets: []float64{.005, .025, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 180}}, []string{"step", "result"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftless_cell_health_checks_total",
			Help: "Health checks of instances: startup (until the first pass), liveness and readiness probes, by result (passed, failed)."},
			[]string{"check", "result"}),
		logLines: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftless_cell_log_lines_total",
			Help: "Lines of instance output the cell read, shipped or dropped."}),
		logDrops: prometheus.NewCounter(prometheus.CounterOpts{Name: "driftless_cell_log_lines_dropped_total",
			Help: "Lines of instance output the cell did not ship (rate limited, or refused by NATS)."}),
		starts: map[indexKey]*indexStarts{},
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.steps, m.checks, m.logLines, m.logDrops, instanceCollector{a: a, m: m}} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering the cell's metrics: %w", err)
		}
	}
	m.registered = true
	return m, nil
}

// stepTook observes one launch step.
func (m *cellMetrics) stepTook(step string, took time.Duration, err error) {
	if m == nil {
		return
	}
	m.steps.WithLabelValues(strings.ReplaceAll(step, " ", "_"), result(err, "ok", "failed")).Observe(took.Seconds())
}

// checked counts one health check (check: startup, liveness, readiness).
func (m *cellMetrics) checked(check string, err error) {
	if m == nil {
		return
	}
	m.checks.WithLabelValues(check, result(err, "passed", "failed")).Inc()
}

// logLine counts one line of instance output read.
func (m *cellMetrics) logLine() {
	if m != nil {
		m.logLines.Inc()
	}
}

// logDropped counts n lines of instance output not shipped (the log rate
// limiter calls it too).
func (m *cellMetrics) logDropped(n int) {
	if m != nil && n > 0 {
		m.logDrops.Add(float64(n))
	}
}

// started counts an instance the cell accepted to start.
func (m *cellMetrics) started(ref model.InstanceRef, now time.Time) {
	if m == nil || !m.registered {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := keyOf(ref)
	s := m.starts[k]
	if s == nil {
		s = &indexStarts{}
		m.starts[k] = s
	}
	s.n++
	s.lastSeen = now
}

// restarts is how many times the cell started index k again after its
// first start there, for the indexes present; the others are forgotten
// once restartMemory has passed.
func (m *cellMetrics) restarts(present map[indexKey]bool, now time.Time) map[indexKey]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[indexKey]int, len(present))
	for k, s := range m.starts {
		switch {
		case present[k]:
			s.lastSeen = now
			out[k] = s.n - 1
		case now.Sub(s.lastSeen) > restartMemory:
			delete(m.starts, k)
		}
	}
	return out
}

func result(err error, ok, failed string) string {
	if err != nil {
		return failed
	}
	return ok
}

// instanceCollector makes the per-instance series at each scrape from
// the instances the cell has.
type instanceCollector struct {
	a *Agent
	m *cellMetrics
}

var (
	descCPU = prometheus.NewDesc("driftless_instance_cpu_seconds_total",
		"CPU time the instance's processes used, from its cgroup.", instanceLabels, nil)
	descMemory = prometheus.NewDesc("driftless_instance_memory_bytes",
		"Memory the instance uses (its cgroup's usage less inactive page cache).", instanceLabels, nil)
	descMemoryLimit = prometheus.NewDesc("driftless_instance_memory_limit_bytes",
		"The instance's memory limit.", instanceLabels, nil)
	descDisk = prometheus.NewDesc("driftless_instance_disk_bytes",
		"Bytes the instance wrote to its container's writable layer.", instanceLabels, nil)
	descRestarts = prometheus.NewDesc("driftless_instance_restarts_total",
		"Times this cell started the index again (a replacement after a crash, a rollout or a move) since its agent started.", instanceLabels, nil)
)

// Describe implements prometheus.Collector.
func (c instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCPU, descMemory, descMemoryLimit, descDisk, descRestarts} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c instanceCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	c.a.mu.Lock()
	statuses := make([]model.InstanceStatus, 0, len(c.a.insts))
	for _, in := range c.a.insts {
		statuses = append(statuses, in.status)
	}
	c.a.mu.Unlock()
	byIndex := perIndex(statuses)
	present := make(map[indexKey]bool, len(byIndex))
	for k, st := range byIndex {
		present[k] = true
		l := k.labels()
		if st.MemoryMB > 0 {
			ch <- prometheus.MustNewConstMetric(descMemoryLimit, prometheus.GaugeValue, float64(st.MemoryMB<<20), l...)
		}
		u := st.Usage
		if u == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, u.CPUSeconds, l...)
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, float64(u.MemoryBytes), l...)
		ch <- prometheus.MustNewConstMetric(descDisk, prometheus.GaugeValue, float64(u.DiskBytes), l...)
	}
	for k, n := range c.m.restarts(present, now) {
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(n), k.labels()...)
	}
}

// perIndex picks one instance per index (the series' labels name the
// index, not the instance): a RUNNING one, else a STARTING one, else the
// latest; an index whose instances are all stopping or stopped has none.
func perIndex(statuses []model.InstanceStatus) map[indexKey]model.InstanceStatus {
	rank := func(s model.InstanceState) int {
		switch s {
		case model.StateRunning:
			return 3
		case model.StateStarting:
			return 2
		case model.StateCrashed:
			return 1
		}
		return 0
	}
	out := map[indexKey]model.InstanceStatus{}
	for _, st := range statuses {
		if rank(st.State) == 0 {
			continue
		}
		k := keyOf(st.InstanceRef)
		prev, ok := out[k]
		if !ok || rank(st.State) > rank(prev.State) || (rank(st.State) == rank(prev.State) && st.Since.After(prev.Since)) {
			out[k] = st
		}
	}
	return out
}
