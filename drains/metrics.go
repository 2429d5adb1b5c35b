package drains

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count, per drain (its ID, a short hash of its URL), the lines
// sent and dropped.
type Metrics struct {
	sent, dropped *prometheus.CounterVec
}

// NewMetrics makes the counters and registers them on reg (nil: not
// registered; counters already registered there are reused).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftless_drain_lines_sent_total",
			Help: "Log lines written to a syslog drain, by drain (a short hash of its URL)."}, []string{"drain"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "driftless_drain_lines_dropped_total",
			Help: "Log lines dropped because a syslog drain's queue was full (the drain slow or away), by drain (a short hash of its URL)."}, []string{"drain"}),
	}
	if reg != nil {
		m.sent = register(reg, m.sent)
		m.dropped = register(reg, m.dropped)
	}
	return m
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return old
			}
		}
	}
	return c
}
