package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// BenchmarkDashboard measures the dashboard's first load in headless
// chromium against `driftless dev` running hello: from the navigation's
// start (performance's time origin) to the apps list rendered with the
// API's answer (the page's "apps-rendered" mark). Each load comes from
// about:blank, so that the page, its scripts and styles and the API's
// answers are fetched again (the assets are served with Cache-Control:
// no-cache and no validator); the token is the tab's, signed in once. It
// also reports when DOMContentLoaded ended (page and modules fetched and
// run) and when the API's answer to /v1/apps ended.
//
// Run with: go test ./e2e -run '^$' -bench Dashboard -benchtime 20x -timeout 40m -v
func BenchmarkDashboard(b *testing.B) {
	br := newBrowser(b)
	p := startDev(b)
	p.deployHello(b, 1, "Bench")
	br.signIn(p.apiURL(), p.adminToken())
	br.wait(30*time.Second, "the apps list", `document.querySelector('#apps-table tr[data-app="hello"]') ? "y" : ""`)
	var samples, loaded, answered []time.Duration
	var transferred float64
	b.ResetTimer()
	for range b.N {
		br.navigate("about:blank")
		br.navigate(p.apiURL() + "/ui/#/apps")
		ms := br.wait(30*time.Second, "the apps list rendered",
			`(() => { const m = performance.getEntriesByName("apps-rendered")[0]; return m && document.querySelector('#apps-table tr[data-app="hello"]') ? String(m.startTime) : ""; })()`)
		v, err := strconv.ParseFloat(ms, 64)
		if err != nil {
			b.Fatalf("the mark's time %q: %v", ms, err)
		}
		samples = append(samples, time.Duration(v*float64(time.Millisecond)))
		// Where the time went: the page's DOMContentLoaded (HTML and
		// modules fetched and run) and the end of the API's answer.
		parts, err := br.eval(`(() => {
			const nav = performance.getEntriesByType("navigation")[0];
			const api = performance.getEntriesByType("resource").find((e) => e.name.endsWith("/v1/apps"));
			return nav.domContentLoadedEventEnd + " " + (api ? api.responseEnd : 0);
		})()`)
		var dcl, api float64
		if _, serr := fmt.Sscan(parts, &dcl, &api); err == nil && serr == nil {
			loaded = append(loaded, time.Duration(dcl*float64(time.Millisecond)))
			answered = append(answered, time.Duration(api*float64(time.Millisecond)))
		}
		size, err := br.eval(`String(performance.getEntriesByType("navigation").concat(performance.getEntriesByType("resource")).reduce((n, e) => n + (e.transferSize || 0), 0))`)
		if err == nil {
			transferred, _ = strconv.ParseFloat(size, 64)
		}
	}
	b.StopTimer()
	reportPercentiles(b, samples)
	reportP90(b, "dom-content-loaded-", loaded)
	reportP90(b, "apps-answered-", answered)
	b.ReportMetric(transferred, "bytes-transferred")
	if errs := br.problems(false); len(errs) > 0 {
		b.Errorf("console errors:\n%v", errs)
	}
}
