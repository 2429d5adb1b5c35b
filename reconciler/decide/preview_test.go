package decide

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/driftless/driftless/model"
)

// TestPreviewRoute: the first DNS label of a route's host gets -pr-<n>,
// the path is kept, a label stays at most 63 bytes, and a wildcard route
// has no preview.
func TestPreviewRoute(t *testing.T) {
	long := strings.Repeat("a", 62)
	tests := []struct {
		route string
		n     int
		want  string
		ok    bool
	}{
		{"hello.apps.example.com", 1, "hello-pr-1.apps.example.com", true},
		{"hello.apps.example.com/api/v1", 12, "hello-pr-12.apps.example.com/api/v1", true},
		{"Hello.Example.COM:8080/x/", 3, "hello-pr-3.example.com/x", true},
		{"localhost", 7, "localhost-pr-7", true},
		{long + ".example.com", 42, strings.Repeat("a", 63-len("-pr-42")) + "-pr-42.example.com", true},
		{strings.Repeat("a", 57) + "-b.example.com", 5, strings.Repeat("a", 57) + "-pr-5.example.com", true},
		{"*.apps.example.com", 1, "", false},
		{"*.apps.example.com/path", 1, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.route, func(t *testing.T) {
			got, ok := PreviewRoute(tt.route, tt.n)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("PreviewRoute(%q, %d) = %q, %v; want %q, %v", tt.route, tt.n, got, ok, tt.want, tt.ok)
			}
			if label, _, _ := strings.Cut(got, "."); len(label) > maxLabel {
				t.Errorf("label %q is %d bytes", label, len(label))
			}
		})
	}
}

// TestForPreview: a preview has one instance per app, DRIFTLESS_PREVIEW
// in its env, its routes rewritten (a wildcard left out with a warning, a
// no-route app kept without routes), and release ids of its own; the
// production proposal it was made from is not changed.
func TestForPreview(t *testing.T) {
	const manifest = `applications:
- name: hello
  instances: 3
  memory: 64M
  buildpacks: [binary_buildpack]
  command: ./hello
  env:
    GREETING: Hello
  routes:
  - route: hello.apps.example.com/greet
  - route: "*.wild.example.com"
- name: worker
  instances: 2
  memory: 64M
  buildpacks: [binary_buildpack]
  command: ./hello
  no-route: true
- name: plain
  memory: 64M
  buildpacks: [binary_buildpack]
  command: ./hello
`
	tree := mapTree{fstest.MapFS{
		"apps/manifest.yml": {Data: []byte(manifest)},
		"apps/hello":        {Data: []byte("binary")},
	}}
	opts := Options{Source: "apps#pr-4", Space: "dev-pr-4", Commit: "c1", Domain: "apps.localhost", Preview: true}
	prop := Desired(tree, opts)
	if len(prop.Errors) > 0 {
		t.Fatal(prop.Errors)
	}
	before := Desired(tree, opts)
	pv := ForPreview(prop, Preview{Number: 4, Branch: "feature", Author: "ada"})

	tests := []struct {
		app    string
		routes []string
	}{
		{"hello", []string{"hello-pr-4.apps.example.com/greet"}},
		{"worker", nil},
		{"plain", []string{"plain-pr-4.apps.localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.app, func(t *testing.T) {
			i := slices.IndexFunc(pv.Apps, func(a model.App) bool { return a.Name == tt.app })
			j := slices.IndexFunc(pv.Releases, func(r model.Release) bool { return r.App == tt.app })
			if i < 0 || j < 0 {
				t.Fatalf("app or release of %s missing: %+v", tt.app, pv)
			}
			a, r := pv.Apps[i], pv.Releases[j]
			if a.Instances != 1 {
				t.Errorf("instances %d, want 1", a.Instances)
			}
			if r.Run.Env[PreviewEnv] != "4" {
				t.Errorf("env %v, want %s=4", r.Run.Env, PreviewEnv)
			}
			if !slices.Equal(r.Run.Routes, tt.routes) || !slices.Equal(a.Routes, tt.routes) {
				t.Errorf("routes: release %v app %v, want %v", r.Run.Routes, a.Routes, tt.routes)
			}
			if a.ReleaseID != r.ID || r.ID != ReleaseID(r) || r.ID == before.Releases[j].ID {
				t.Errorf("release id %s (app asks %s), production's %s", r.ID, a.ReleaseID, before.Releases[j].ID)
			}
		})
	}
	if len(pv.Warnings) != 1 || !strings.Contains(pv.Warnings[0].Message, "*.wild.example.com") {
		t.Errorf("warnings %+v, want one about the wildcard route", pv.Warnings)
	}
	for j, r := range prop.Releases {
		if _, set := r.Run.Env[PreviewEnv]; set || r.ID != before.Releases[j].ID {
			t.Errorf("the production proposal changed: %+v", r)
		}
	}
	if prop.Apps[0].Instances != 3 {
		t.Errorf("the production proposal's instances changed: %d", prop.Apps[0].Instances)
	}
}

// TestForPreviewInstances: a budget allowing more instances lets each app
// run up to it, never more than its manifest asks.
func TestForPreviewInstances(t *testing.T) {
	prop := Proposal{Apps: []model.App{{Name: "big", Instances: 5}, {Name: "small", Instances: 1}, {Name: "off", Instances: 0}}}
	tests := []struct {
		max  int
		want map[string]int
	}{
		{0, map[string]int{"big": 1, "small": 1, "off": 0}},
		{1, map[string]int{"big": 1, "small": 1, "off": 0}},
		{3, map[string]int{"big": 3, "small": 1, "off": 0}},
		{9, map[string]int{"big": 5, "small": 1, "off": 0}},
	}
	for _, tt := range tests {
		got := map[string]int{}
		for _, a := range ForPreview(prop, Preview{Number: 2, MaxInstances: tt.max}).Apps {
			got[a.Name] = a.Instances
		}
		if !maps.Equal(got, tt.want) {
			t.Errorf("max %d: instances %v, want %v", tt.max, got, tt.want)
		}
	}
}

// TestForPreviewKeepsErrors: a refused proposal stays refused as it is.
func TestForPreviewKeepsErrors(t *testing.T) {
	prop := Proposal{Errors: []model.Problem{{Message: "broken"}}}
	if got := ForPreview(prop, Preview{Number: 1}); len(got.Errors) != 1 || len(got.Apps) != 0 {
		t.Fatalf("%+v", got)
	}
}

// TestPreviewPolicy: input.preview carries the pull request, labels never
// null; a production space has none.
func TestPreviewPolicy(t *testing.T) {
	var none *Preview
	if none.Policy() != nil {
		t.Error("a non-preview has an input.preview")
	}
	p := (&Preview{Number: 2, Branch: "b", Author: "a"}).Policy()
	if p.Number != 2 || p.Branch != "b" || p.Author != "a" || p.Labels == nil {
		t.Errorf("%+v", p)
	}
}
