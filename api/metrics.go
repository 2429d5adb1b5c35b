package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftless/driftless/reconciler"
)

// AppStates are every state an app is shown in (App.State), the values of
// driftless_controller_apps' state label.
var AppStates = []string{AppStaging, AppStagingFailed, AppStarting, AppRunning, AppRollingOut, AppDegraded, AppSleeping}

var descApps = prometheus.NewDesc("driftless_controller_apps",
	"Apps by state as `driftless apps` shows them (staging, staging-failed, starting, running, rolling-out, degraded, sleeping); counted by the leader only.",
	[]string{"state"}, nil)

// appsCollector counts the apps of a backend by state at each scrape.
type appsCollector struct {
	backend Backend
	leads   func() bool
}

// NewAppsCollector is the collector of driftless_controller_apps: b's
// apps by state, while leads says the controller leads (a standby counts
// none, so that controllers' series add up).
func NewAppsCollector(b Backend, leads func() bool) prometheus.Collector {
	return appsCollector{backend: b, leads: leads}
}

// Describe implements prometheus.Collector.
func (c appsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descApps }

// Collect implements prometheus.Collector.
func (c appsCollector) Collect(ch chan<- prometheus.Metric) {
	counts := make(map[string]int, len(AppStates))
	if c.leads() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		counts = appsByState(c.backend.AppStates(ctx), time.Now())
	}
	for _, s := range AppStates {
		ch <- prometheus.MustNewConstMetric(descApps, prometheus.GaugeValue, float64(counts[s]), s)
	}
}

// appsByState counts apps by their shown state.
func appsByState(states []reconciler.AppState, now time.Time) map[string]int {
	out := make(map[string]int, len(AppStates))
	for _, s := range states {
		out[appView(s, now).State]++
	}
	return out
}
