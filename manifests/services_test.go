package manifests

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/driftless/driftless/model"
)

func TestParseServices(t *testing.T) {
	const good = `services:
- name: db
  service: postgresql
  plan: small
  broker: postgres
  preview-plan: tiny
  parameters: {max_connections: 10, extensions: [pgcrypto]}
  tags: [sql]
  rotate-every: 30d
  rotation: 2
user-provided:
- name: smtp
  credentials: |
    -----BEGIN AGE ENCRYPTED FILE-----
    YWdl
    -----END AGE ENCRYPTED FILE-----
  syslog_drain_url: syslog://logs.example.com:514
  tags: [mail]
`
	sm := ParseServices("apps/services.yml", []byte(good), nil)
	if len(sm.Diagnostics) != 0 {
		t.Fatalf("diagnostics %v", sm.Diagnostics)
	}
	if len(sm.Services) != 2 {
		t.Fatalf("services %+v", sm.Services)
	}
	db, smtp := sm.Services[0], sm.Services[1]
	if db.Name != "db" || db.Service != "postgresql" || db.Plan != "small" || db.Broker != "postgres" || db.PreviewPlan != "tiny" ||
		db.RotateEvery != 30*24*time.Hour || db.Rotation != 2 || db.Tags[0] != "sql" || db.Parameters["max_connections"] != 10 ||
		db.Pos != (model.Position{File: "apps/services.yml", Line: 2, Col: 3}) {
		t.Errorf("db %+v", db)
	}
	if !smtp.UserProvided || !strings.HasPrefix(smtp.Credentials, "-----BEGIN AGE") || smtp.SyslogDrainURL != "syslog://logs.example.com:514" {
		t.Errorf("smtp %+v", smtp)
	}

	tests := []struct {
		name, yaml, want string
	}{
		{"no plan", "services:\n- name: db\n  service: postgresql\n", `services.yml:2:3: service "db" needs plan`},
		{"no service", "services:\n- name: db\n  plan: small\n", `services.yml:2:3: service "db" needs service`},
		{"no name", "services:\n- service: postgresql\n  plan: small\n", "services.yml:2:3: a service entry needs a name"},
		{"bad name", "services:\n- name: my.db\n  service: p\n  plan: s\n", `services.yml:2:9: service name "my.db" is not valid`},
		{"unknown key", "services:\n- name: db\n  service: p\n  plan: s\n  plans: x\n", `services.yml:5:3: unknown service attribute "plans"`},
		{"twice", "services:\n- {name: db, service: p, plan: s}\n- {name: db, service: p, plan: s}\n", `services.yml:3:3: service "db" is already declared at services.yml:2:3`},
		{"bad rotate-every", "services:\n- {name: db, service: p, plan: s, rotate-every: soon}\n", `services.yml:2:49: rotate-every: "soon" is not a duration`},
		{"plain credentials", "user-provided:\n- name: smtp\n  credentials: {password: hunter2}\n", "services.yml:3:16: credentials of \"smtp\" must be encrypted"},
		{"not age", "user-provided:\n- name: smtp\n  credentials: hunter2\n", "are not an age ciphertext"},
		{"bad drain", "user-provided:\n- name: smtp\n  syslog_drain_url: nowhere\n", `services.yml:3:21: syslog_drain_url of "smtp": a syslog drain URL must look like syslog://host:port`},
		{"https drain", "user-provided:\n- name: smtp\n  syslog_drain_url: https://user:pw@logs.example.com/x\n", `services.yml:3:21: syslog_drain_url of "smtp": https:// syslog drains are not supported`},
		{"drain without port", "user-provided:\n- name: smtp\n  syslog_drain_url: syslog://logs.example.com\n", `syslog_drain_url of "smtp": a syslog drain URL needs a port`},
		{"unknown top level", "service:\n- name: db\n", `services.yml:1:1: unknown top-level attribute "service" of services.yml (services, user-provided) (did you mean "services"?)`},
		{"not a list", "services: {name: db}\n", "services must be a list, not a mapping"},
		{"bad yaml", "services: [\n", "invalid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sm := ParseServices("services.yml", []byte(tt.yaml), nil)
			var all []string
			for _, d := range sm.Diagnostics.Errors() {
				all = append(all, d.String())
			}
			if !strings.Contains(strings.Join(all, "\n"), tt.want) {
				t.Fatalf("errors %q, want one with %q", all, tt.want)
			}
			if j := strings.Join(all, "\n"); strings.Contains(j, "hunter2") || strings.Contains(j, "user:pw") {
				t.Fatalf("an error shows the credentials: %q", all)
			}
		})
	}
}

// TestLoadServices: every services.yml of a tree is read with the vars
// beside it, and a name declared in two of them is an error.
func TestLoadServices(t *testing.T) {
	fsys := fstest.MapFS{
		"a/manifest.yml": {Data: []byte("applications:\n- name: web\n  services: [db]\n")},
		"a/services.yml": {Data: []byte("services:\n- {name: db, service: postgresql, plan: ((plan))}\n")},
		"a/vars.yml":     {Data: []byte("plan: small\n")},
		"b/services.yml": {Data: []byte("services:\n- {name: db, service: postgresql, plan: big}\n")},
	}
	set := LoadFS(fsys, ".")
	if len(set.Services) != 1 || set.Services[0].Plan != "small" {
		t.Fatalf("services %+v", set.Services)
	}
	errs := set.Diagnostics.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0].String(), `b/services.yml:2:3: service "db" is already declared at a/services.yml:2:3`) {
		t.Fatalf("errors %v", errs)
	}
}
