package reconciler

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/executor"
)

// controllerMetrics are the controller's Prometheus metrics
// (docs/observability.md; apps by state are the API's, api/metrics.go).
// Its methods are safe on a nil receiver (no metrics).
type controllerMetrics struct {
	converge prometheus.Histogram
	actions  *prometheus.CounterVec
	staging  *prometheus.HistogramVec
	policy   *prometheus.HistogramVec
}

// newControllerMetrics makes the controller's metrics and registers them,
// with a leader gauge of c, on reg (nil: none registered).
func newControllerMetrics(reg prometheus.Registerer, c *Controller) (*controllerMetrics, error) {
	m := &controllerMetrics{
		converge: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "driftless_controller_convergence_duration_seconds",
			Help:    "Time one convergence took: snapshot, plan, and the actions carried out on the cells.",
			Buckets: []float64{.0005, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftless_controller_actions_total",
			Help: "Plan actions carried out on the cells, by kind (start, stop) and result (ok, failed)."}, []string{"kind", "result"}),
		staging: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "driftless_controller_staging_duration_seconds",
			Help:    "Time a release took to stage, from its turn in the queue to its droplet (or failure), by result (staged, failed).",
			Buckets: []float64{.1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900}}, []string{"result"}),
		policy: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "driftless_controller_policy_decision_duration_seconds",
			Help:    "Time the policies took to decide: deploy (a commit's desired state) or authz (an API request).",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"decision"}),
	}
	if reg == nil {
		return m, nil
	}
	leader := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "driftless_controller_leader",
		Help: "1 while this controller leads (acts), 0 while it stands by."}, func() float64 {
		if c.Leads() {
			return 1
		}
		return 0
	})
	for _, col := range []prometheus.Collector{m.converge, m.actions, m.staging, m.policy, leader} {
		if err := reg.Register(col); err != nil {
			return nil, fmt.Errorf("registering the controller's metrics: %w", err)
		}
	}
	return m, nil
}

// Leads reports whether this controller leads now.
func (c *Controller) Leads() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.role == RoleLeader
}

func (m *controllerMetrics) converged(took time.Duration) {
	if m != nil {
		m.converge.Observe(took.Seconds())
	}
}

func (m *controllerMetrics) applied(r executor.Result) {
	if m == nil {
		return
	}
	res := "ok"
	if r.Err != nil {
		res = "failed"
	}
	m.actions.WithLabelValues(string(r.Action.Kind), res).Inc()
}

// staged observes a staging that ended with rel (as stored after it):
// staged or failed; any other state (superseded) is not observed.
func (m *controllerMetrics) staged(rel *model.Release, took time.Duration) {
	if m == nil || rel == nil {
		return
	}
	switch {
	case rel.Staged():
		m.staging.WithLabelValues("staged").Observe(took.Seconds())
	case rel.State == model.ReleaseFailed:
		m.staging.WithLabelValues("failed").Observe(took.Seconds())
	}
}

// decided observes one policy decision (deploy or authz).
func (m *controllerMetrics) decided(decision string, took time.Duration) {
	if m != nil {
		m.policy.WithLabelValues(decision).Observe(took.Seconds())
	}
}
