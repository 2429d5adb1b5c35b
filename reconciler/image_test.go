package reconciler

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
)

func TestDockerPasswords(t *testing.T) {
	var p DockerPasswords
	for _, spec := range []string{"registry.example.com=pw-one", "docker.io=pw-hub", "127.0.0.1:5000=a=b"} {
		if err := p.Set(spec); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []string{"registry.example.com", "=pw", "r.example.com=", "UPPER CASE=x"} {
		if err := p.Set(bad); err == nil {
			t.Errorf("Set(%q) took it", bad)
		}
	}
	tests := []struct {
		registry, want string
		ok             bool
	}{
		{"registry.example.com", "pw-one", true},
		{"index.docker.io", "pw-hub", true},
		{"127.0.0.1:5000", "a=b", true},
		{"other.example.com", "", false},
	}
	for _, tt := range tests {
		if got, ok := p.For(tt.registry); got != tt.want || ok != tt.ok {
			t.Errorf("For(%s) = %q, %v; want %q, %v", tt.registry, got, ok, tt.want, tt.ok)
		}
	}
	p.Default = "pw-default"
	if got, ok := p.For("other.example.com"); got != "pw-default" || !ok {
		t.Errorf("For(other) with a default = %q, %v", got, ok)
	}
	for _, shown := range []string{p.String(), p.LogValue().String()} {
		if strings.Contains(shown, "pw-") || !strings.Contains(shown, "registry.example.com") {
			t.Errorf("shown as %q", shown)
		}
	}
	if got := p.redact("login pw-one failed (pw-default)"); got != "login [password] failed ([password])" {
		t.Errorf("redact: %q", got)
	}
}

// pushTestImage pushes a random image whose config says user to the
// registry at host.
func pushTestImage(t *testing.T, ref, user string) v1.Hash {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.User, cf.Config.Entrypoint = user, []string{"/bin/app"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStageImage: a docker release is staged by copying its image into the
// blob store (its droplet is the image's digest); a root image is refused
// with the reason unless a policy's allow_root_image allows it; a
// username without a password configured is refused saying what to set.
// (The registry here is go-containerregistry's in memory, without
// authentication: e2e TestDockerImage runs a real one with passwords.)
func TestStageImage(t *testing.T) {
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	plain := pushTestImage(t, host+"/team/app:v1", "2000")
	pushTestImage(t, host+"/team/root:v1", "root:root")
	allowing, err := policies.Load(context.Background(), fstest.MapFS{"images.rego": {Data: []byte(
		"package driftless.images\n\nimport rego.v1\n\nallow_root_image if input.app.docker.image == \"" + host + "/team/root:v1\"\n")}})
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(image, user string) string {
		m := "applications:\n- name: hello\n  memory: 64M\n  docker:\n    image: " + image + "\n"
		if user != "" {
			m += "    username: " + user + "\n"
		}
		return m
	}
	tests := []struct {
		name, image, user string
		policy            *policies.Set
		wantErr           string
		wantDigest        string
	}{
		{name: "copied", image: host + "/team/app:v1", wantDigest: plain.String()},
		{name: "root refused", image: host + "/team/root:v1",
			wantErr: "image " + host + "/team/root:v1 runs as root (USER root:root); driftless runs instances as uid 2000 — rebuild it with a USER, or allow it by policy"},
		{name: "root allowed by policy", image: host + "/team/root:v1", policy: allowing},
		{name: "no password configured", image: host + "/team/app:v1", user: "deployer",
			wantErr: "no password for registry " + host + " (user deployer) is configured on the controller: start it with --docker-password " + host + "=… or CF_DOCKER_PASSWORD"},
		{name: "missing image", image: host + "/team/none:v1", wantErr: "pulling docker image " + host + "/team/none:v1 as anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if tt.policy != nil {
				h.c.policy = tt.policy
			}
			h.c.apply(context.Background(), h.se, newCommit("c1", map[string]string{"apps/hello/manifest.yml": manifest(tt.image, tt.user)}))
			app, ok := h.c.store.App(hello)
			if !ok {
				t.Fatalf("not applied: %+v", h.status())
			}
			var rel *model.Release
			h.eventually("staged or failed", func() bool {
				rel = h.c.store.Release(hello, app.ReleaseID)
				return rel != nil && rel.State != model.ReleaseStaging
			})
			if tt.wantErr != "" {
				if rel.State != model.ReleaseFailed || !strings.Contains(rel.Error, tt.wantErr) {
					t.Fatalf("release %s: %q, want failed with %q", rel.State, rel.Error, tt.wantErr)
				}
				return
			}
			if !rel.Staged() || rel.Buildpack != model.DockerBuildpack || tt.wantDigest != "" && rel.DropletDigest != tt.wantDigest {
				t.Fatalf("release %+v", rel)
			}
			blobs, err := h.c.imageBlobs(rel.DropletDigest)
			if err != nil || len(blobs) != 4 { // manifest, config, two layers
				t.Fatalf("droplet blobs %v, %v", blobs, err)
			}
			for _, b := range blobs {
				if !h.c.cfg.Blobs.Has(b) {
					t.Errorf("blob %s of the droplet is not in the blob store", b)
				}
			}
			if tt.policy != nil && !strings.Contains(strings.Join(rel.StagingLog, "\n"), "allowed by policy images") {
				t.Errorf("staging log %q", rel.StagingLog)
			}
		})
	}
}
