package policies

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// logApp is an app of n instances with a log rate limit (bytes per
// second, -1 for none) and the given other process types.
func logApp(name string, n int, rate int64, procs ...Process) App {
	a := app(name, n, 64)
	a.LogRateLimit, a.Processes = rate, procs
	return a
}

// TestLogRateQuota: quotas.yml's log_rate_limit (bytes per second, read
// from "4K") bounds instances × log rate limit over a space, and refuses
// apps without a limit there; each violation is located at its app.
func TestLogRateQuota(t *testing.T) {
	set, err := Load(context.Background(), fstest.MapFS{"quotas.yml": {Data: []byte(
		"default:\n  log_rate_limit: 4K\nspaces:\n  free:\n    log_rate_limit: -1\n  tiny:\n    log_rate_limit: 512B\n")}})
	if err != nil {
		t.Fatal(err)
	}
	worker := func(n int, rate int64) Process {
		return Process{Type: "worker", Instances: n, MemoryMB: 64, LogRateLimit: rate}
	}
	tests := []struct {
		name string
		in   Input
		want []string // "app: message substring", one per violation, in order
	}{
		{"within", Input{Space: "dev", Apps: []App{logApp("a", 2, 1024), logApp("b", 2, 1024)}}, nil},
		{"total over, each app told", Input{Space: "dev", Apps: []App{logApp("a", 3, 1024), logApp("b", 2, 1024)}}, []string{
			"a: space dev would log up to 5120 bytes/sec (instances × log-rate-limit-per-second), over its log_rate_limit quota of 4096 bytes/sec; app a's instances account for 3072 bytes/sec",
			"b: app b's instances account for 2048 bytes/sec",
		}},
		{"processes count", Input{Space: "dev", Apps: []App{logApp("a", 1, 1024, worker(2, 2048))}}, []string{
			"a: would log up to 5120 bytes/sec",
		}},
		{"unlimited web", Input{Space: "dev", Apps: []App{logApp("a", 1, -1)}}, []string{
			"a: app a has no log rate limit, but space dev has a log_rate_limit quota of 4096 bytes/sec: give it log-rate-limit-per-second (e.g. 1K)",
		}},
		{"unlimited worker", Input{Space: "dev", Apps: []App{logApp("a", 1, 1024, worker(1, -1))}}, []string{
			"a: process worker of app a has no log rate limit",
		}},
		{"unlimited without instances", Input{Space: "dev", Apps: []App{logApp("a", 0, -1, worker(0, -1))}}, nil},
		{"space with -1: no quota", Input{Space: "free", Apps: []App{logApp("a", 5, -1), logApp("b", 9, 1<<20)}}, nil},
		{"space's own quota", Input{Space: "tiny", Apps: []App{logApp("a", 1, 1024)}}, []string{"a: over its log_rate_limit quota of 512 bytes/sec"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := set.Evaluate(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != len(tt.want) {
				t.Fatalf("violations %+v, want %d", vs, len(tt.want))
			}
			for i, w := range tt.want {
				appName, msg, _ := strings.Cut(w, ": ")
				v := vs[i]
				if v.Policy != "quota" || v.App != appName || !strings.Contains(v.Message, msg) {
					t.Errorf("violation %+v, want app %s and %q", v, appName, msg)
				}
				if v.File != "apps/"+appName+"/manifest.yml" || v.Line != 3 {
					t.Errorf("violation at %s:%d, want at the app's manifest", v.File, v.Line)
				}
			}
		})
	}
}

// TestLogRateQuotaErrors: a log_rate_limit quota that is no log rate is
// refused at load, naming where it is.
func TestLogRateQuotaErrors(t *testing.T) {
	tests := []struct {
		quotas string
		want   string
	}{
		{"default:\n  log_rate_limit: lots\n", `quotas.yml: default.log_rate_limit: log rate "lots" has no number`},
		{"default:\n  log_rate_limit: 1024\n", `quotas.yml: default.log_rate_limit: log rate "1024" needs a unit`},
		{"spaces:\n  dev:\n    log_rate_limit: 0\n", `quotas.yml: spaces.dev.log_rate_limit: log rate "0" would drop every log line`},
		{"default:\n  log_rate_limit: 1M\n  memory: 1\n", `quotas.yml: default.memory`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Load(context.Background(), fstest.MapFS{"quotas.yml": {Data: []byte(tt.quotas)}})
			var le *LoadError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a LoadError containing %q", err, tt.want)
			}
		})
	}
}
