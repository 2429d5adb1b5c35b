package manifests

import (
	"reflect"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

func TestProcesses(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		// web is the app's own (web) attributes that are checked.
		webInstances int
		webMemory    int
		webCommand   string
		webHealth    model.HealthCheck
		procs        []ProcessDecl
		errors       []string
	}{
		{
			name: "web and worker",
			yaml: `applications:
- name: app
  memory: 128M
  command: ./web
  processes:
  - type: web
    instances: 2
  - type: worker
    command: ./work
    instances: 3
    memory: 64M
`,
			webInstances: 2, webMemory: 128, webCommand: "./web",
			webHealth: model.HealthCheck{Type: model.HealthPort, TimeoutSec: 60},
			procs: []ProcessDecl{{Type: "worker", Command: "./work", Instances: 3, MemoryMB: 64, DiskMB: 1024,
				HealthCheck: model.HealthCheck{Type: model.HealthProcess, TimeoutSec: 60}, Pos: model.Position{File: "manifest.yml", Line: 8, Col: 5}}},
		},
		{
			name: "web entry wins over the app's attributes",
			yaml: `applications:
- name: app
  instances: 1
  memory: 64M
  processes:
  - type: web
    memory: 96M
    command: ./serve
    health-check-type: http
    health-check-http-endpoint: /ready
`,
			webInstances: 1, webMemory: 96, webCommand: "./serve",
			webHealth: model.HealthCheck{Type: model.HealthHTTP, Endpoint: "/ready", TimeoutSec: 60},
		},
		{
			name: "a type without instances gets one, its health check its own",
			yaml: `applications:
- name: app
  processes:
  - type: clock
    health-check-type: http
    timeout: 5
`,
			webInstances: 1, webMemory: 256,
			webHealth: model.HealthCheck{Type: model.HealthPort, TimeoutSec: 60},
			procs: []ProcessDecl{{Type: "clock", Instances: 1, MemoryMB: 256, DiskMB: 1024,
				HealthCheck: model.HealthCheck{Type: model.HealthHTTP, Endpoint: "/", TimeoutSec: 5}, Pos: model.Position{File: "manifest.yml", Line: 4, Col: 5}}},
		},
		{
			name: "readiness and interval per type",
			yaml: `applications:
- name: app
  processes:
  - type: web
    readiness-health-check-type: http
    health-check-interval: 5
  - type: worker
    readiness-health-check-type: port
    readiness-health-check-interval: 3
    health-check-interval: 7
`,
			webInstances: 1, webMemory: 256,
			webHealth: model.HealthCheck{Type: model.HealthPort, TimeoutSec: 60, IntervalSec: 5,
				Readiness: model.ReadinessCheck{Type: model.HealthHTTP, Endpoint: "/"}},
			procs: []ProcessDecl{{Type: "worker", Instances: 1, MemoryMB: 256, DiskMB: 1024,
				HealthCheck: model.HealthCheck{Type: model.HealthProcess, TimeoutSec: 60, IntervalSec: 7,
					Readiness: model.ReadinessCheck{Type: model.HealthPort, IntervalSec: 3}},
				Pos: model.Position{File: "manifest.yml", Line: 7, Col: 5}}},
		},
		{
			name: "errors",
			yaml: `applications:
- name: app
  processes:
  - type: worker
    instance: 2
  - type: worker
  - command: x
  - type: Bad!
  - type: w2
    instances: -1
    health-check-type: tcp
`,
			errors: []string{
				`manifest.yml:5:5: error: unknown process attribute "instance" (did you mean "instances"?)`,
				`manifest.yml:6:5: error: process type "worker" is given twice`,
				`manifest.yml:7:5: error: a process needs a type (web, worker, …)`,
				`manifest.yml:8:5: error: process type "Bad!" is not valid: use lower-case letters, digits, - and _ (at most 63)`,
				`manifest.yml:10:16: error: instances must be 0 or more, not -1`,
				`manifest.yml:11:24: error: health-check-type "tcp" is not one of port, http, process`,
			},
		},
		{
			name:   "not a list",
			yaml:   "applications:\n- name: app\n  processes: {web: 1}\n",
			errors: []string{"manifest.yml:3:14: error: processes must be a list of process types, not a mapping"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse("manifest.yml", []byte(tt.yaml), nil)
			var errs []string
			for _, d := range m.Diagnostics.Errors() {
				errs = append(errs, d.Diagnostic())
			}
			if !reflect.DeepEqual(errs, tt.errors) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.errors, "\n"))
			}
			if len(tt.errors) > 0 {
				return
			}
			a := m.Apps[0]
			if a.Instances != tt.webInstances || a.MemoryMB != tt.webMemory || a.Command != tt.webCommand || a.HealthCheck != tt.webHealth {
				t.Errorf("web: instances %d memory %d command %q health %+v; want %d %d %q %+v",
					a.Instances, a.MemoryMB, a.Command, a.HealthCheck, tt.webInstances, tt.webMemory, tt.webCommand, tt.webHealth)
			}
			if !reflect.DeepEqual(a.Processes, tt.procs) {
				t.Errorf("processes:\n%+v\nwant:\n%+v", a.Processes, tt.procs)
			}
		})
	}
}
