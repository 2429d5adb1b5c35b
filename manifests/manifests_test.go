package manifests

import (
	"reflect"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/driftless/driftless/model"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		vars     map[string]any
		want     App // compared on the fields set below
		warnings []string
	}{
		{
			name: "defaults",
			yaml: "applications:\n- name: web\n",
			want: App{Name: "web", Instances: 1, MemoryMB: 256, DiskMB: 1024, Path: ".", HealthCheck: model.HealthCheck{Type: "port", TimeoutSec: 60}},
		},
		{
			name: "everything supported",
			yaml: `applications:
- name: Hello_App-2
  instances: 3
  memory: 1G
  disk_quota: 512mb
  buildpacks: [binary_buildpack]
  stack: cflinuxfs4
  command: ./hello --port $PORT
  path: ./src/../app
  env: {GREETING: hi, COUNT: 3, ON: true, EMPTY: null}
  routes:
  - route: Hello.Apps.Example.com/api/
  - route: www.example.com
    protocol: http1
  random-route: true
  health-check-type: http
  health-check-http-endpoint: /health
  health-check-invocation-timeout: 5
  timeout: 120
  metadata:
    labels: {team: core, "example.com/tier": web}
    annotations: {contact: "ops@example.com"}
`,
			want: App{Name: "Hello_App-2", Instances: 3, MemoryMB: 1024, DiskMB: 512, Buildpacks: []string{"binary_buildpack"},
				Stack: "cflinuxfs4", Command: "./hello --port $PORT", Path: "app",
				Env:         map[string]string{"GREETING": "hi", "COUNT": "3", "ON": "true", "EMPTY": ""},
				Routes:      []Route{{Route: "Hello.Apps.Example.com/api/", Host: "hello", Domain: "apps.example.com", Path: "/api", Protocol: "http1"}, {Route: "www.example.com", Host: "www", Domain: "example.com", Protocol: "http1"}},
				RandomRoute: true, HealthCheck: model.HealthCheck{Type: "http", Endpoint: "/health", InvocationTimeoutSec: 5, TimeoutSec: 120},
				Labels: map[string]string{"team": "core", "example.com/tier": "web"}, Annotations: map[string]string{"contact": "ops@example.com"}},
		},
		{
			name: "http health check endpoint defaults to /",
			yaml: "applications:\n- name: web\n  health-check-type: http\n  instances: 0\n",
			want: App{Name: "web", Instances: 0, MemoryMB: 256, DiskMB: 1024, Path: ".", HealthCheck: model.HealthCheck{Type: "http", Endpoint: "/", TimeoutSec: 60}},
		},
		{
			name: "variables keep their type and fill text",
			yaml: "applications:\n- name: ((app))\n  instances: ((count))\n  command: ./run --env ((stage.name))\n",
			vars: map[string]any{"app": "api", "count": 4, "stage": map[string]any{"name": "prod"}},
			want: App{Name: "api", Instances: 4, MemoryMB: 256, DiskMB: 1024, Path: ".", Command: "./run --env prod", HealthCheck: model.HealthCheck{Type: "port", TimeoutSec: 60}},
		},
		{
			name: "anchors, aliases and merge keys",
			yaml: "x-base: &base\n  memory: 64M\n  env: &env {A: a}\napplications:\n- name: web\n  <<: *base\n  memory: 128M\n- name: worker\n  env: *env\n  no-route: true\n",
			want: App{Name: "web", Instances: 1, MemoryMB: 128, DiskMB: 1024, Path: ".", Env: map[string]string{"A": "a"}, HealthCheck: model.HealthCheck{Type: "port", TimeoutSec: 60}},
		},
		{
			name: "legacy host and domains become routes",
			yaml: "applications:\n- name: web\n  hosts: [a, b]\n  domain: example.com\n  buildpack: binary_buildpack\n",
			want: App{Name: "web", Instances: 1, MemoryMB: 256, DiskMB: 1024, Path: ".", Buildpacks: []string{"binary_buildpack"}, HealthCheck: model.HealthCheck{Type: "port", TimeoutSec: 60},
				Routes: []Route{{Route: "a.example.com", Host: "a", Domain: "example.com", Protocol: "http1"}, {Route: "b.example.com", Host: "b", Domain: "example.com", Protocol: "http1"}}},
			warnings: []string{"manifest.yml:3:3: warning: host, hosts, domain, domains and no-hostname are deprecated; write routes: instead (here: a.example.com, b.example.com)",
				"manifest.yml:5:3: warning: buildpack is deprecated; write buildpacks: [binary_buildpack]"},
		},
		{
			name:     "legacy host without domain",
			yaml:     "applications:\n- name: web\n  host: www\n",
			want:     App{Name: "web", Instances: 1, MemoryMB: 256, DiskMB: 1024, Path: ".", HealthCheck: model.HealthCheck{Type: "port", TimeoutSec: 60}, Routes: []Route{{Host: "www", Protocol: "http1"}}},
			warnings: []string{"manifest.yml:3:3: warning: host, hosts, domain, domains and no-hostname are deprecated; write routes: instead (here: www.<default domain>)"},
		},
		{
			name: "unsupported attributes warn",
			yaml: "memory: 64M\napplications:\n- name: web\n  lifecycle: buildpack\n  cnb-credentials: {}\n  processes: []\n  health-check-type: none\n",
			want: App{Name: "web", Instances: 1, MemoryMB: 64, DiskMB: 1024, Path: ".", HealthCheck: model.HealthCheck{Type: "process", TimeoutSec: 60}},
			warnings: []string{
				`manifest.yml:1:1: warning: top-level "memory" is deprecated in Cloud Foundry: it applies to every app; put it in each app instead`,
				`manifest.yml:4:3: warning: attribute "lifecycle" is not supported by driftless yet and is ignored: lifecycles other than buildpack are not supported`,
				`manifest.yml:5:3: warning: attribute "cnb-credentials" is not supported by driftless yet and is ignored: cloud native buildpacks are not supported`,
				`manifest.yml:7:22: warning: health-check-type none is deprecated; it means process`,
			},
		},
		{
			name: "env names Cloud Foundry passes through, decimal sizes",
			yaml: "applications:\n- name: web\n  memory: 0.5G\n  disk_quota: 1.25G\n  env: {will-be-overridden: a, a.b: b, 1st: c, \"sp ace\": d}\n",
			want: App{Name: "web", Instances: 1, MemoryMB: 512, DiskMB: 1280, Path: ".", HealthCheck: model.HealthCheck{Type: "port", TimeoutSec: 60},
				Env: map[string]string{"will-be-overridden": "a", "a.b": "b", "1st": "c", "sp ace": "d"}},
		},
		{
			name: "unknown top-level keys warn, x- keys are silent",
			yaml: "declared-services: {db: {label: pg}}\nx-base: &b {memory: 64M}\ncommon: {a: 1}\ncommnd: x\napplications:\n- name: web\n  <<: *b\n",
			want: App{Name: "web", Instances: 1, MemoryMB: 64, DiskMB: 1024, Path: ".", HealthCheck: model.HealthCheck{Type: "port", TimeoutSec: 60}},
			warnings: []string{
				`manifest.yml:1:1: warning: top-level "declared-services" is not a manifest attribute and is ignored, as Cloud Foundry's CLI ignores it`,
				`manifest.yml:3:1: warning: top-level "common" is not a manifest attribute and is ignored, as Cloud Foundry's CLI ignores it (did you mean "command"?)`,
				`manifest.yml:4:1: warning: top-level "commnd" is not a manifest attribute and is ignored, as Cloud Foundry's CLI ignores it (did you mean "command"?)`,
			},
		},
		{
			name: "empty legacy attributes without routes are ignored",
			yaml: "applications:\n- name: web\n  host: ''\n  domains: []\n  no-hostname: false\n",
			want: App{Name: "web", Instances: 1, MemoryMB: 256, DiskMB: 1024, Path: ".", HealthCheck: model.HealthCheck{Type: "port", TimeoutSec: 60}},
			warnings: []string{
				"manifest.yml:3:3: warning: host is empty and is ignored, as Cloud Foundry ignores it",
				"manifest.yml:4:3: warning: domains is empty and is ignored, as Cloud Foundry ignores it",
			},
		},
		{
			name: "top-level features apply to every app",
			yaml: "features: {ssh: false}\napplications:\n- name: web\n  features: {revisions: true}\n",
			want: App{Name: "web", Instances: 1, MemoryMB: 256, DiskMB: 1024, Path: ".", HealthCheck: model.HealthCheck{Type: "port", TimeoutSec: 60}},
			warnings: []string{
				`manifest.yml:1:1: warning: top-level "features" is deprecated in Cloud Foundry: it applies to every app; put it in each app instead`,
				`manifest.yml:4:14: warning: feature "revisions" is ignored: every commit is a release, and a revert is a rollback`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse("manifest.yml", []byte(tt.yaml), tt.vars)
			if m.Diagnostics.HasErrors() {
				t.Fatalf("unexpected errors: %v", m.Diagnostics)
			}
			var warns []string
			for _, d := range m.Diagnostics.Warnings() {
				warns = append(warns, d.Diagnostic())
			}
			if !reflect.DeepEqual(warns, tt.warnings) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warns, "\n"), strings.Join(tt.warnings, "\n"))
			}
			got := m.Apps[0]
			for i := range got.Routes {
				got.Routes[i].Pos = model.Position{}
			}
			got.Pos, got.Fields = model.Position{}, nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("app:\n%+v\nwant:\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every error of the file, in order
	}{
		{"syntax", "applications:\n- name: a\n  memory: [1\n", []string{"m.yml:2: error: invalid YAML: did not find expected ',' or ']'"}},
		{"empty", "", []string{"m.yml: error: the manifest is empty; it needs an applications: list"}},
		{"not a mapping", "- a\n", []string{"m.yml:1:1: error: the manifest must be a mapping, not a list"}},
		{"no applications", "version: 1\n", []string{"m.yml:1:1: error: the manifest has no applications: list"}},
		{"applications not a list", "applications: {name: a}\n", []string{"m.yml:1:15: error: applications must be a list, not a mapping"}},
		{"bad version", "version: 2\napplications:\n- name: a\n", []string{"m.yml:1:10: error: version 2 is not known; Cloud Foundry manifests are version 1"}},
		{"unknown top-level", "apps: []\napplications:\n- name: a\n", []string{`m.yml:1:1: error: unknown top-level attribute "apps" (did you mean "applications"?)`}},
		{"applications capitalised", "Applications:\n- name: a\n", []string{`m.yml:1:1: error: unknown top-level attribute "Applications" (did you mean "applications"?)`}},
		{"legacy with a value beside routes", "applications:\n- name: a\n  host: ''\n  domain: example.com\n  routes: [{route: a.b.c}]\n", []string{"m.yml:4:3: error: routes cannot be combined with the deprecated host, hosts, domain, domains or no-hostname"}},
		{"bad env names", "applications:\n- name: a\n  env: {\"\": x, \"a=b\": y, \"n\\0ul\": z}\n", []string{
			`m.yml:3:8: error: env: "" is not a valid variable name: it is empty`,
			`m.yml:3:8: error: env: "a=b" is not a valid variable name: it holds =`,
			`m.yml:3:8: error: env: "n\x00ul" is not a valid variable name: it holds a NUL character`,
		}},
		{"applications misspelt", "application:\n- name: a\n", []string{`m.yml:1:1: error: unknown top-level attribute "application" (did you mean "applications"?)`}},
		{"every error of an app at once", `applications:
- name: web
  instanse: 2
  instances: -1
  memory: 512
  disk_quota: 1Q
  buildpacks: binary
  command: [a]
  env: {PORT: 1, "bad=name": x, nested: {a: b}}
  no-route: yes please
  timeout: 0
  health-check-type: tcp
  health-check-http-endpoint: health
  path: /abs
  routes:
  - route: nodomain
  - route: x.example.com:8080
  - {protocol: http1}
  - route: "http://a.example.com"
  - route: a.example.com
    protocol: udp
    weight: 1
  metadata: {labels: {"bad key!": v}, owners: x}
`, []string{
			`m.yml:3:3: error: unknown attribute "instanse" (did you mean "instances"?)`,
			`m.yml:4:14: error: instances must be 0 or more, not -1`,
			`m.yml:5:11: error: memory: size "512" needs a unit (M or G), e.g. 512M`,
			`m.yml:6:15: error: disk_quota: size "1Q" has an unknown unit "Q" (use K, M, G or T, optionally with B)`,
			`m.yml:7:15: error: buildpacks must be a list, not a string`,
			`m.yml:8:12: error: command must be a string, not a list`,
			`m.yml:9:8: error: env: "bad=name" is not a valid variable name: it holds =`,
			`m.yml:9:8: error: env: PORT is set by the platform and cannot be given`,
			`m.yml:9:41: error: env.nested must be a string, not a mapping`,
			`m.yml:10:13: error: no-route must be true or false, not a string`,
			`m.yml:11:12: error: timeout must be more than 0 seconds, not 0`,
			`m.yml:12:22: error: health-check-type "tcp" is not one of port, http, process`,
			`m.yml:13:31: error: health-check-http-endpoint "health" must start with /`,
			`m.yml:14:9: error: path "/abs" must be relative to the manifest's folder`,
			`m.yml:16:12: error: route "nodomain": needs a domain: write host.domain, e.g. nodomain.apps.localhost`,
			`m.yml:17:12: error: route "x.example.com:8080": ports in routes (TCP routes) are not supported yet`,
			`m.yml:18:5: error: a route entry needs route: host.domain[/path]`,
			`m.yml:19:12: error: route "http://a.example.com": write the route without a scheme`,
			`m.yml:21:15: error: route protocol "udp" is not one of http1, http2, tcp`,
			`m.yml:22:5: error: unknown route attribute "weight" (route, protocol, options)`,
			`m.yml:23:22: error: metadata key "bad key!" is not valid (prefix/name, name at most 63 letters, digits, - _ .)`,
			`m.yml:23:39: error: unknown metadata attribute "owners" (labels, annotations)`,
		}},
		{"names", "applications:\n- instances: 1\n- name: 'a b'\n- name: 3\n- name: ok\n- name: ok\n- just-a-string\n", []string{
			"m.yml:2:3: error: application has no name",
			`m.yml:3:9: error: app name "a b" is not valid: use letters, digits, - and _ (at most 63, starting with a letter or digit)`,
			"m.yml:4:9: error: name must be a string, not a number (quote it)",
			`m.yml:6:3: error: app "ok" is declared twice (first at line 5)`,
			"m.yml:7:3: error: each application must be a mapping with at least a name, not a string",
		}},
		{"duplicate key", "applications:\n- name: a\n  memory: 1G\n  memory: 2G\n", []string{`m.yml:4:3: error: "memory" is given twice (first at line 3)`}},
		{"route options", "applications:\n- name: a\n  routes:\n  - route: a.example.com\n    options: {loadbalancing: least-connection}\n  - route: b.example.com\n    options: {loadbalancing: random, hash_header: X}\n", []string{
			`m.yml:7:30: error: route option loadbalancing "random" is not round-robin or least-connection`,
		}},
		{"unfilled variables", "applications:\n- name: ((name))\n  command: run ((arg))\n", []string{
			"m.yml:2:9: error: variable ((name)) has no value (define it in vars.yml beside the manifest)",
			"m.yml:3:12: error: variable ((arg)) has no value (define it in vars.yml beside the manifest)",
		}},
		{"both buildpack forms", "applications:\n- name: a\n  buildpack: x\n  buildpacks: [y]\n", []string{"m.yml:3:3: error: give either buildpacks or the deprecated buildpack, not both"}},
		{"routes with legacy", "applications:\n- name: a\n  host: x\n  routes: [{route: a.b.c}]\n", []string{"m.yml:3:3: error: routes cannot be combined with the deprecated host, hosts, domain, domains or no-hostname"}},
		{"no-route with routes", "applications:\n- name: a\n  no-route: true\n  routes: [{route: a.b.c}]\n", []string{"m.yml:3:3: error: no-route is true but routes are given; remove one of them"}},
		{"merge cycle", "applications:\n- &a\n  name: x\n  <<: *a\n", []string{"m.yml:2:3: error: this mapping merges itself (<< through an alias of itself)"}},
		{"two documents", "applications:\n- name: a\n---\napplications: []\n", []string{"m.yml:3:1: error: a manifest holds one YAML document; this is a second one"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := parseErrors(tt.yaml); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  string
	}{
		{"256M", 256, ""}, {"256m", 256, ""}, {"256MB", 256, ""}, {"256mb", 256, ""}, {"1G", 1024, ""}, {"2gb", 2048, ""},
		{"1024K", 1, ""}, {"1025KB", 2, ""}, {"1 G", 1024, ""}, {" 64M ", 64, ""}, {"1T", 1024 * 1024, ""},
		{"256", 0, "needs a unit"}, {"", 0, "empty size"}, {"M", 0, "has no number"}, {"0M", 0, "more than zero"},
		{"12X", 0, "unknown unit"}, {"-1M", 0, "more than zero"}, {"99999999999999999999M", 0, "too large"},
		{"1.5G", 1536, ""}, {"0.5G", 512, ""}, {"512.5M", 513, ""}, {"1.5 gb", 1536, ""}, {"0.1M", 1, ""}, {"1.5K", 1, ""},
		{"2.25T", 2359296, ""}, {"0.0M", 0, "more than zero"}, {"-0.5G", 0, "more than zero"}, {"1.G", 0, "not a number"},
		{".5G", 0, "not a number"}, {"1.2.3G", 0, "not a number"}, {"1.5", 0, "needs a unit"}, {"1.5X", 0, "unknown unit"},
		{"1e3M", 0, "unknown unit"}, {"1048577G", 0, "too large"}, {"1048576G", 1 << 30, ""},
		{"0.00000000000000000000000000000001M", 0, "more than 32 digits"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSize(%q) = %d, %v; want error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestLoadFS(t *testing.T) {
	fsys := fstest.MapFS{
		"apps/web/manifest.yml":  {Data: []byte("applications:\n- name: web\n  command: ./web ((flag))\n")},
		"apps/web/vars.yml":      {Data: []byte("flag: --fast\n")},
		"apps/api/manifest.yaml": {Data: []byte("applications:\n- name: api\n  path: ../../src/api\n- name: web\n")},
		"apps/bad/manifest.yml":  {Data: []byte("applications:\n- name: escape\n  path: ../../..\n")},
		"apps/vars/manifest.yml": {Data: []byte("applications:\n- name: v\n")},
		"apps/vars/vars.yml":     {Data: []byte("a: [\n")},
		".git/manifest.yml":      {Data: []byte("not: parsed\n")},
		"src/api/main.go":        {Data: []byte("package main\n")},
		"docs/manifest.yml.orig": {Data: []byte("ignored")},
	}
	set := LoadFS(fsys, ".")
	var names []string
	for _, a := range set.Apps() {
		names = append(names, a.Name)
	}
	if strings.Join(names, ",") != "api,web,v" {
		t.Errorf("apps %v", names)
	}
	var diags []string
	for _, d := range set.Diagnostics {
		diags = append(diags, d.Diagnostic())
	}
	if len(diags) != 3 || !strings.Contains(diags[0], `apps/bad/manifest.yml:3:3: error: app "escape": path "../../.." leaves the repository`) ||
		!strings.HasPrefix(diags[1], "apps/vars/vars.yml:") || diags[2] != `apps/web/manifest.yml:2:3: error: app "web" is already declared at apps/api/manifest.yaml:4:3` {
		t.Errorf("diagnostics:\n%s", strings.Join(diags, "\n"))
	}
	for _, a := range set.Apps() {
		if a.Name == "api" && a.Path != "../../src/api" {
			t.Errorf("api path %q", a.Path)
		}
	}

	sub := LoadFS(fsys, "apps/web")
	if len(sub.Manifests) != 1 || sub.Manifests[0].File != "manifest.yml" || sub.Apps()[0].Command != "./web --fast" {
		t.Errorf("LoadFS(apps/web) = %+v", sub.Manifests[0])
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("applications:\n- name: web\n  memory: 1G\n  routes: [{route: a.b.c/d}]\n"))
	f.Add([]byte("x: &a {b: *a}\napplications: [*a]\n"))
	f.Add([]byte("x: &a {<<: *a}\napplications: [*a]\n"))
	f.Add([]byte("applications:\n- <<: [{name: a}, {instances: 2}]\n  host: h\n  domains: [d.e]\n"))
	f.Add([]byte("applications:\n- name: ((n))\n  env: {A: ((v)) x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m := Parse("f.yml", data, map[string]any{"n": "x", "v": []any{1}})
		if m == nil {
			t.Fatal("nil manifest")
		}
		for _, a := range m.Apps {
			if a.Name == "" {
				t.Fatalf("app without name accepted: %+v", a)
			}
		}
	})
}

// parseErrors parses yaml as m.yml and returns it with its errors as
// diagnostics.
func parseErrors(yaml string) (*Manifest, []string) {
	m := Parse("m.yml", []byte(yaml), nil)
	var got []string
	for _, d := range m.Diagnostics.Errors() {
		got = append(got, d.Diagnostic())
	}
	return m, got
}
