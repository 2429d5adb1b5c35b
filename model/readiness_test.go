package model

import (
	"testing"
	"time"
)

func TestReadinessCheck(t *testing.T) {
	tests := []struct {
		name         string
		rc           ReadinessCheck
		probed       bool
		interval     time.Duration
		probeTimeout time.Duration
	}{
		{"none", ReadinessCheck{}, false, time.Second, DefaultProbeTimeout},
		{"process", ReadinessCheck{Type: HealthProcess}, false, time.Second, DefaultProbeTimeout},
		{"port", ReadinessCheck{Type: HealthPort, IntervalSec: 3}, true, 3 * time.Second, DefaultProbeTimeout},
		{"http", ReadinessCheck{Type: HealthHTTP, Endpoint: "/r", InvocationTimeoutSec: 2}, true, time.Second, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.rc.Probed(); got != tc.probed {
				t.Errorf("Probed = %v", got)
			}
			if got := tc.rc.Interval(time.Second); got != tc.interval {
				t.Errorf("Interval = %s", got)
			}
			if got := tc.rc.Probe().ProbeTimeout(); got != tc.probeTimeout {
				t.Errorf("probe timeout = %s", got)
			}
		})
	}
	if got := (HealthCheck{IntervalSec: 9}).Interval(time.Second); got != 9*time.Second {
		t.Errorf("HealthCheck.Interval = %s", got)
	}
	if got := (HealthCheck{}).Interval(time.Second); got != time.Second {
		t.Errorf("HealthCheck.Interval default = %s", got)
	}
}
