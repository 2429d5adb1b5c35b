package decide

import (
	"reflect"
	"strings"
	"testing"
)

const workerYAML = `applications:
- name: app
  memory: 64M
  command: ./web
  processes:
  - type: worker
    command: ./work
    instances: 2
    memory: 32M
`

// TestProcessTypesInDesiredState checks that a commit's process types are
// in the release (command, limits) and their counts in the app: scaling a
// type keeps the release, so it restarts nothing; anything else about a
// type is a new release.
func TestProcessTypesInDesiredState(t *testing.T) {
	files := func(manifest string) map[string]string {
		return map[string]string{"app/manifest.yml": manifest, "app/web": "binary"}
	}
	p := build(t, files(workerYAML))
	rel := onlyRelease(t, p, "app")
	if len(rel.Processes) != 1 || rel.Processes[0].Type != "worker" || rel.Processes[0].Command != "./work" || rel.Processes[0].MemoryMB != 32 {
		t.Fatalf("release processes = %+v", rel.Processes)
	}
	if want := map[string]int{"worker": 2}; !reflect.DeepEqual(p.Apps[0].Processes, want) {
		t.Fatalf("app processes = %v, want %v", p.Apps[0].Processes, want)
	}
	if run, _ := rel.RunFor("worker"); run.LogRateLimit != 0 {
		t.Fatalf("worker's log rate limit %d, want 0 (none)", run.LogRateLimit)
	}
	limited := onlyRelease(t, build(t, files(strings.Replace(workerYAML, "  memory: 64M\n", "  memory: 64M\n  log-rate-limit-per-second: 4K\n", 1)+
		"    log-rate-limit-per-second: 1K\n")), "app")
	if web, _ := limited.RunFor(""); web.LogRateLimit != 4096 {
		t.Errorf("web's log rate limit %d, want 4096", web.LogRateLimit)
	}
	if run, _ := limited.RunFor("worker"); run.LogRateLimit != 1024 {
		t.Errorf("worker's log rate limit %d, want 1024", run.LogRateLimit)
	}
	tests := []struct {
		name     string
		manifest string
		same     bool
	}{
		{"worker scaled", strings.Replace(workerYAML, "instances: 2", "instances: 5", 1), true},
		{"worker memory", strings.Replace(workerYAML, "memory: 32M", "memory: 48M", 1), false},
		{"worker command", strings.Replace(workerYAML, "./work", "./work -v", 1), false},
		{"worker log rate limit", workerYAML + "    log-rate-limit-per-second: 4K\n", false},
		{"app log rate limit, which the worker inherits", strings.Replace(workerYAML, "  memory: 64M\n", "  memory: 64M\n  log-rate-limit-per-second: 4K\n", 1), false},
		{"worker removed", strings.Split(workerYAML, "  processes:")[0], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := onlyRelease(t, build(t, files(tt.manifest)), "app").ID
			if (got == rel.ID) != tt.same {
				t.Errorf("release id %s vs %s: same=%v, want %v", got, rel.ID, got == rel.ID, tt.same)
			}
		})
	}
}

// TestPolicyAppLogRate: the policies see each type's log rate limit in
// bytes per second, -1 when it has none.
func TestPolicyAppLogRate(t *testing.T) {
	tests := []struct {
		name            string
		manifest        string
		web, worker     int64
		workerInstances int
	}{
		{"none", workerYAML, -1, -1, 2},
		{"the app's, inherited", strings.Replace(workerYAML, "  memory: 64M\n", "  memory: 64M\n  log-rate-limit-per-second: 2K\n", 1), 2048, 2048, 2},
		{"the worker's own", workerYAML + "    log-rate-limit-per-second: 1M\n", -1, 1 << 20, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := build(t, map[string]string{"app/manifest.yml": tt.manifest, "app/web": "binary"})
			pa := PolicyApp(p.Apps[0], onlyRelease(t, p, "app"))
			if pa.LogRateLimit != tt.web || len(pa.Processes) != 1 || pa.Processes[0].LogRateLimit != tt.worker ||
				pa.Processes[0].Instances != tt.workerInstances {
				t.Errorf("policy app %+v: want web %d, worker %d", pa, tt.web, tt.worker)
			}
		})
	}
}
