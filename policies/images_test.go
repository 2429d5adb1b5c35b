package policies

import (
	"context"
	"slices"
	"testing"
	"testing/fstest"
)

func TestAllowsRootImage(t *testing.T) {
	ctx := context.Background()
	def, err := Default(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set, err := Load(ctx, fstest.MapFS{
		"images.rego": {Data: []byte(`package driftless.images

import rego.v1

# Root images from the platform team's own registry may run (as uid 2000).
allow_root_image if startswith(input.app.docker.image, "registry.internal/platform/")

deny contains v if {
	some a in input.apps
	a.docker != null
	not startswith(a.docker.image, "registry.internal/")
	v := {"app": a.name, "msg": sprintf("app %s: image %s is not from registry.internal", [a.name, a.docker.image])}
}
`)},
		"other.rego": {Data: []byte("package driftless.other\n\nimport rego.v1\n\ndeny contains v if { false; v := {} }\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	in := func(image, user string) RootImageInput {
		return RootImageInput{Space: "dev", App: ImageApp{Name: "a", Docker: Docker{Image: image, User: user, Digest: "sha256:00"}}}
	}
	tests := []struct {
		name string
		set  *Set
		in   RootImageInput
		want bool
	}{
		{"built-in bundle allows none", def, in("registry.internal/platform/x:1", "root"), false},
		{"allowed by the rule", set, in("registry.internal/platform/x:1", "0"), true},
		{"not matched by the rule", set, in("registry.internal/team/x:1", "0"), false},
		{"no set", nil, in("x", "0"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, by, err := tt.set.AllowsRootImage(ctx, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want || ok && !slices.Equal(by, []string{"images"}) {
				t.Errorf("allowed %v by %v, want %v by images", ok, by, tt.want)
			}
		})
	}
	// The commit's input carries each app's docker image (null for
	// buildpack apps), for deny rules on images.
	vs, err := set.Evaluate(ctx, Input{Space: "dev", Apps: []App{
		{Name: "hub", Docker: &Docker{Image: "nginx:1"}}, {Name: "ok", Docker: &Docker{Image: "registry.internal/team/x:1"}}, {Name: "bp"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].App != "hub" || vs[0].Message != "app hub: image nginx:1 is not from registry.internal" {
		t.Errorf("violations %+v", vs)
	}
}
