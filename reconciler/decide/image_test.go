package decide

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

const dockerYAML = `applications:
- name: img
  memory: 64M
  docker:
    image: registry.example.com/team/app:v1
    username: deployer
`

// TestDockerRelease: a docker app's release carries its image, has no
// source, and its id follows the manifest entry (image, username, run
// settings), not the files beside the manifest; the policies see the
// image.
func TestDockerRelease(t *testing.T) {
	base := map[string]string{"apps/img/manifest.yml": dockerYAML, "apps/img/README.md": "v1"}
	rel := onlyRelease(t, build(t, base), "img")
	if rel.Docker == nil || *rel.Docker != (model.DockerImage{Image: "registry.example.com/team/app:v1", Username: "deployer"}) ||
		rel.SourcePath != "" || rel.SourceTree != "" {
		t.Fatalf("release %+v", rel)
	}
	tests := []struct {
		name string
		edit func(map[string]string)
		same bool
	}{
		{"a file beside the manifest", func(f map[string]string) { f["apps/img/README.md"] = "v2" }, true},
		{"the image's tag", func(f map[string]string) {
			f["apps/img/manifest.yml"] = strings.Replace(dockerYAML, ":v1", ":v2", 1)
		}, false},
		{"the username", func(f map[string]string) {
			f["apps/img/manifest.yml"] = strings.Replace(dockerYAML, "deployer", "other", 1)
		}, false},
		{"memory", func(f map[string]string) {
			f["apps/img/manifest.yml"] = strings.Replace(dockerYAML, "64M", "128M", 1)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range base {
				files[k] = v
			}
			tt.edit(files)
			if id := onlyRelease(t, build(t, files), "img").ID; (id == rel.ID) != tt.same {
				t.Errorf("release id %s vs %s: same=%v, want %v", id, rel.ID, id == rel.ID, tt.same)
			}
		})
	}
	pa := PolicyApp(model.App{Name: "img"}, rel)
	if pa.Docker == nil || pa.Docker.Image != "registry.example.com/team/app:v1" || pa.Docker.Username != "deployer" {
		t.Errorf("policy app %+v", pa)
	}
}

// TestReleaseIDOfBuildpackAppsUnchanged: the docker field added to the
// release id's key leaves the id of every release without one as it was,
// so that an upgrade restarts nothing.
func TestReleaseIDOfBuildpackAppsUnchanged(t *testing.T) {
	rel := onlyRelease(t, build(t, map[string]string{"apps/hello/manifest.yml": helloYAML, "apps/hello/hello": "x"}), "hello")
	before := struct {
		Space, App string
		Tree       string
		Buildpacks []string
		Stack      string
		Run        model.RunSpec
	}{rel.Space, rel.App, rel.SourceTree, rel.Buildpacks, rel.Stack, rel.Run}
	data, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:])[:16]; rel.ID != want {
		t.Errorf("release id %s, was %s before docker images", rel.ID, want)
	}
}
