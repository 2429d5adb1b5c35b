package manifests

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseLogRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"1K", 1024, ""}, {"16K", 16 << 10, ""}, {"1M", 1 << 20, ""}, {"1m", 1 << 20, ""}, {"1MB", 1 << 20, ""},
		{"512B", 512, ""}, {"512b", 512, ""}, {"1 KB", 1024, ""}, {" 2G ", 2 << 30, ""}, {"1T", 1 << 40, ""},
		{"1.5K", 1536, ""}, {"0.5B", 1, ""}, {"1.0001K", 1025, ""},
		{"-1", -1, ""}, {" -1 ", -1, ""}, {"unlimited", -1, ""},
		{"0", 0, "would drop every log line"}, {"0K", 0, "would drop every log line"}, {"0.0M", 0, "would drop every log line"},
		{"1024", 0, "needs a unit"}, {"", 0, "empty log rate"}, {"K", 0, "has no number"}, {"-2", 0, "more than zero"},
		{"-1K", 0, "more than zero"}, {"12X", 0, "unknown unit"}, {"1.K", 0, "not a number"}, {"1e3K", 0, "unknown unit"},
		{"1025G", 0, "too large"}, {"99999999999999999999T", 0, "too large"},
		{"0.00000000000000000000000000000001K", 0, "more than 32 digits"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLogRate(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("ParseLogRate(%q) = %d, %v; want error with %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseLogRate(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestLogRateLimitAttribute(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// app is the app's (web's) limit, procs each other type's.
		app    int64
		procs  map[string]int64
		errors []string
	}{
		{name: "not given: no limit", yaml: "applications:\n- name: app\n"},
		{name: "app level", yaml: "applications:\n- name: app\n  log-rate-limit-per-second: 16K\n", app: 16 << 10},
		{name: "-1 is no limit", yaml: "applications:\n- name: app\n  log-rate-limit-per-second: -1\n"},
		{
			name: "processes inherit the app's (web entry included, as memory) unless they give their own",
			yaml: `applications:
- name: app
  log-rate-limit-per-second: 1K
  processes:
  - type: web
    log-rate-limit-per-second: 2K
  - type: worker
  - type: chatty
    log-rate-limit-per-second: -1
  - type: quiet
    log-rate-limit-per-second: 512B
`,
			app: 2 << 10, procs: map[string]int64{"worker": 2 << 10, "chatty": 0, "quiet": 512},
		},
		{
			name: "errors at file:line",
			yaml: `applications:
- name: app
  log-rate-limit-per-second: 0
  processes:
  - type: worker
    log-rate-limit-per-second: 1024
  - type: clock
    log-rate-limit-per-second: [1K]
`,
			errors: []string{
				`manifest.yml:3:30: error: log-rate-limit-per-second: log rate "0" would drop every log line, which driftless does not offer: ` +
					`give a limit such as 1K, or -1 for no limit (send the output to /dev/null to keep nothing)`,
				`manifest.yml:6:32: error: log-rate-limit-per-second: log rate "1024" needs a unit (B, K, M or G), e.g. 1024B or 1024K`,
				`manifest.yml:8:32: error: log-rate-limit-per-second must be a rate like 16K or 1M (bytes per second), or -1 for no limit, not a list`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse("manifest.yml", []byte(tt.yaml), nil)
			var errs []string
			for _, d := range m.Diagnostics {
				errs = append(errs, d.Diagnostic())
			}
			if !reflect.DeepEqual(errs, tt.errors) {
				t.Fatalf("diagnostics:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.errors, "\n"))
			}
			if len(tt.errors) > 0 {
				return
			}
			a := m.Apps[0]
			if a.LogRateLimit != tt.app {
				t.Errorf("app's limit %d, want %d", a.LogRateLimit, tt.app)
			}
			procs := map[string]int64{}
			for _, p := range a.Processes {
				procs[p.Type] = p.LogRateLimit
			}
			if len(procs) == 0 {
				procs = nil
			}
			if !reflect.DeepEqual(procs, tt.procs) {
				t.Errorf("processes' limits %v, want %v", procs, tt.procs)
			}
		})
	}
}
