package manifests

import (
	"reflect"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

func TestParseDockerAndSidecars(t *testing.T) {
	const good = `applications:
- name: web
  memory: 512M
  docker:
    image: 127.0.0.1:5000/test/app:v1
    username: deployer
  processes:
  - type: worker
    memory: 256M
  sidecars:
  - name: config-server
    process_types: [web, worker, web]
    command: ./config-server --port 8081
    memory: 100M
  - name: logger
    process_types: [worker]
    command: ./log
`
	m := Parse("manifest.yml", []byte(good), nil)
	if len(m.Diagnostics) != 0 || len(m.Apps) != 1 {
		t.Fatalf("diagnostics %v, apps %+v", m.Diagnostics, m.Apps)
	}
	app := m.Apps[0]
	if want := (&model.DockerImage{Image: "127.0.0.1:5000/test/app:v1", Username: "deployer"}); !reflect.DeepEqual(app.Docker, want) {
		t.Errorf("docker %+v, want %+v", app.Docker, want)
	}
	want := []model.Sidecar{
		{Name: "config-server", ProcessTypes: []string{"web", "worker"}, Command: "./config-server --port 8081", MemoryMB: 100},
		{Name: "logger", ProcessTypes: []string{"worker"}, Command: "./log"},
	}
	if !reflect.DeepEqual(app.Sidecars, want) {
		t.Errorf("sidecars %+v, want %+v", app.Sidecars, want)
	}
	if got := (model.RunSpec{Sidecars: app.Sidecars}).SidecarsOf(""); len(got) != 1 || got[0].Name != "config-server" {
		t.Errorf("sidecars of a web instance: %+v", got)
	}
	if got := (model.RunSpec{Sidecars: app.Sidecars}).SidecarsOf("worker"); len(got) != 2 {
		t.Errorf("sidecars of a worker instance: %+v", got)
	}
	// A type the app does not have is a warning; the sidecars of each
	// type must fit in its memory.
	other := Parse("manifest.yml", []byte("applications:\n- name: a\n  memory: 64M\n  processes:\n  - type: worker\n    memory: 32M\n"+
		"  sidecars:\n  - {name: s, process_types: [clock], command: x}\n  - {name: t, process_types: [worker], command: x, memory: 32M}\n"), nil)
	var diags []string
	for _, d := range other.Diagnostics {
		diags = append(diags, d.Diagnostic())
	}
	wantDiags := []string{
		`manifest.yml:7:3: warning: sidecar s joins process type "clock", which the app does not have: it runs nowhere`,
		"manifest.yml:7:3: error: the sidecars' memory (32 MB together) must be less than process worker's memory (32 MB): it is counted inside each instance's limit",
	}
	if !reflect.DeepEqual(diags, wantDiags) {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", strings.Join(diags, "\n"), strings.Join(wantDiags, "\n"))
	}

	tests := []struct {
		name, yaml string
		want       []string // each error, file:line:col: error: message prefix
	}{
		{"docker with buildpacks", "applications:\n- name: a\n  buildpacks: [go_buildpack]\n  docker: {image: nginx}\n",
			[]string{"manifest.yml:3:3: buildpacks cannot be given with docker"}},
		{"docker with legacy buildpack", "applications:\n- name: a\n  docker: {image: nginx}\n  buildpack: go_buildpack\n",
			[]string{"manifest.yml:4:3: buildpack cannot be given with docker"}},
		{"docker with path", "applications:\n- name: a\n  docker: {image: nginx}\n  path: src\n",
			[]string{"manifest.yml:4:3: path cannot be given with docker"}},
		{"docker without image", "applications:\n- name: a\n  docker: {username: u}\n",
			[]string{"manifest.yml:3:11: docker needs an image"}},
		{"docker image empty", "applications:\n- name: a\n  docker: {image: \"\"}\n",
			[]string{"manifest.yml:3:19: docker: image is empty"}},
		{"docker image invalid", "applications:\n- name: a\n  docker: {image: \"UPPER/Case:v1\"}\n",
			[]string{`manifest.yml:3:19: docker: image "UPPER/Case:v1" is not an image reference`}},
		{"docker password in git", "applications:\n- name: a\n  docker: {image: nginx, password: hunter2}\n",
			[]string{"manifest.yml:3:26: docker: a password in the manifest would be in git"}},
		{"docker unknown key", "applications:\n- name: a\n  docker: {image: nginx, usrname: u}\n",
			[]string{`manifest.yml:3:26: unknown docker attribute "usrname" (image, username) (did you mean "username"?)`}},
		{"docker not a mapping", "applications:\n- name: a\n  docker: nginx\n",
			[]string{"manifest.yml:3:11: docker must be a mapping, not a string"}},
		{"sidecars not a list", "applications:\n- name: a\n  sidecars: {name: x}\n",
			[]string{"manifest.yml:3:13: sidecars must be a list, not a mapping"}},
		{"sidecar without command", "applications:\n- name: a\n  sidecars:\n  - {name: s, process_types: [web]}\n",
			[]string{"manifest.yml:4:5: a sidecar needs command"}},
		{"sidecar without process types", "applications:\n- name: a\n  sidecars:\n  - {name: s, command: x}\n",
			[]string{"manifest.yml:4:5: a sidecar needs process_types"}},
		{"sidecar empty process types", "applications:\n- name: a\n  sidecars:\n  - {name: s, command: x, process_types: []}\n",
			[]string{"manifest.yml:4:42: sidecar process_types is empty"}},
		{"sidecar bad name", "applications:\n- name: a\n  sidecars:\n  - {name: \"a b\", command: x, process_types: [web]}\n",
			[]string{`manifest.yml:4:12: sidecar name "a b" is not valid`}},
		{"sidecar twice", "applications:\n- name: a\n  sidecars:\n  - {name: s, command: x, process_types: [web]}\n  - {name: s, command: y, process_types: [web]}\n",
			[]string{`manifest.yml:5:5: sidecar "s" is declared twice`}},
		{"sidecar unknown key", "applications:\n- name: a\n  sidecars:\n  - {name: s, command: x, process_types: [web], memroy: 1G}\n",
			[]string{`manifest.yml:4:49: unknown sidecar attribute "memroy" (name, process_types, command, memory) (did you mean "memory"?)`}},
		{"sidecar bad memory", "applications:\n- name: a\n  sidecars:\n  - {name: s, command: x, process_types: [web], memory: 12}\n",
			[]string{"manifest.yml:4:57: memory:"}},
		{"sidecars' memory not less than the app's", "applications:\n- name: a\n  memory: 256M\n  sidecars:\n  - {name: s, command: x, process_types: [web], memory: 128M}\n  - {name: t, command: y, process_types: [web], memory: 128M}\n",
			[]string{"manifest.yml:4:3: the sidecars' memory (256 MB together) must be less than the app's memory (256 MB)"}},
		{"sidecars' memory checked against a memory given after them", "applications:\n- name: a\n  sidecars:\n  - {name: s, command: x, process_types: [web], memory: 100M}\n  memory: 64M\n",
			[]string{"manifest.yml:3:3: the sidecars' memory (100 MB together) must be less than the app's memory (64 MB)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Parse("manifest.yml", []byte(tt.yaml), nil)
			errs := m.Diagnostics.Errors()
			if len(errs) != len(tt.want) {
				t.Fatalf("errors %v, want %d: %q", errs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if got := errs[i].String(); !strings.HasPrefix(got, w) {
					t.Errorf("error %q, want it to start with %q", got, w)
				}
			}
			if len(m.Apps) != 0 {
				t.Errorf("an app with errors was kept: %+v", m.Apps)
			}
		})
	}
}
