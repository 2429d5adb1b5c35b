package decide

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/driftless/driftless/model"
)

// mapTree is a Tree over an in-memory file system whose "tree hash" of a
// folder is a hash of every file under it, like git's.
type mapTree struct{ fsys fstest.MapFS }

func (m mapTree) FS() fs.FS { return m.fsys }

func (m mapTree) TreeHash(p string, exclude ...string) (string, error) {
	p = path.Clean(p)
	h := sha256.New()
	found := false
	names := make([]string, 0, len(m.fsys))
	for name := range m.fsys {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		rel := strings.TrimPrefix(strings.TrimPrefix(name, p), "/")
		if p == "." {
			rel = name
		}
		if p == "." || name == p || strings.HasPrefix(name, p+"/") {
			found = true
			if slices.Contains(exclude, rel) {
				continue
			}
			h.Write([]byte(name))
			h.Write(m.fsys[name].Data)
		}
	}
	if !found {
		return "", fs.ErrNotExist
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

const helloYAML = `applications:
- name: hello
  instances: 2
  memory: 64M
  buildpacks: [binary_buildpack]
  command: ./hello
  env:
    GREETING: Hello
  metadata:
    labels:
      team: a
`

func tree(files map[string]string) mapTree {
	m := fstest.MapFS{}
	for k, v := range files {
		m[k] = &fstest.MapFile{Data: []byte(v), Mode: 0o644}
	}
	return mapTree{m}
}

func build(t *testing.T, files map[string]string) Proposal {
	t.Helper()
	return Desired(tree(files), Options{Source: "s", Space: "dev", Commit: "c1", Domain: "apps.localhost"})
}

func onlyRelease(t *testing.T, p Proposal, app string) model.Release {
	t.Helper()
	for _, r := range p.Releases {
		if r.App == app {
			return r
		}
	}
	t.Fatalf("no release for %s in %+v (errors %+v)", app, p.Releases, p.Errors)
	return model.Release{}
}

// TestReleaseIDStability: what does and does not make a new release.
func TestReleaseIDStability(t *testing.T) {
	base := map[string]string{"apps/hello/manifest.yml": helloYAML, "apps/hello/hello": "binary v1", "apps/other/manifest.yml": strings.ReplaceAll(helloYAML, "hello", "other"), "apps/other/hello": "x"}
	id0 := onlyRelease(t, build(t, base), "hello").ID
	tests := []struct {
		name   string
		change func(map[string]string)
		same   bool
	}{
		{"nothing", func(map[string]string) {}, true},
		{"instance count", func(f map[string]string) {
			f["apps/hello/manifest.yml"] = strings.Replace(helloYAML, "instances: 2", "instances: 5", 1)
		}, true},
		{"metadata labels", func(f map[string]string) {
			f["apps/hello/manifest.yml"] = strings.Replace(helloYAML, "team: a", "team: b", 1)
		}, true},
		{"another app's source", func(f map[string]string) { f["apps/other/hello"] = "y" }, true},
		{"a file outside any app", func(f map[string]string) { f["README.md"] = "docs" }, true},
		{"env", func(f map[string]string) {
			f["apps/hello/manifest.yml"] = strings.Replace(helloYAML, "GREETING: Hello", "GREETING: Howdy", 1)
		}, false},
		{"memory", func(f map[string]string) {
			f["apps/hello/manifest.yml"] = strings.Replace(helloYAML, "memory: 64M", "memory: 128M", 1)
		}, false},
		{"command", func(f map[string]string) {
			f["apps/hello/manifest.yml"] = strings.Replace(helloYAML, "command: ./hello", "command: ./hello -v", 1)
		}, false},
		{"the app's source", func(f map[string]string) { f["apps/hello/hello"] = "binary v2" }, false},
		{"a new file in the app's folder", func(f map[string]string) { f["apps/hello/extra.txt"] = "x" }, false},
		{"a log rate limit", func(f map[string]string) {
			f["apps/hello/manifest.yml"] = helloYAML + "  log-rate-limit-per-second: 1K\n"
		}, false},
		{"a log rate limit of -1 (none, as before)", func(f map[string]string) {
			f["apps/hello/manifest.yml"] = helloYAML + "  log-rate-limit-per-second: -1\n"
		}, true},
		{"a sidecar", func(f map[string]string) {
			f["apps/hello/manifest.yml"] = helloYAML + "  sidecars: [{name: s, process_types: [web], command: ./s}]\n"
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range base {
				files[k] = v
			}
			tc.change(files)
			id := onlyRelease(t, build(t, files), "hello").ID
			if (id == id0) != tc.same {
				t.Fatalf("release id %s vs %s: same=%v, want same=%v", id, id0, id == id0, tc.same)
			}
		})
	}
}

func TestBuildDesired(t *testing.T) {
	p := build(t, map[string]string{
		"apps/hello/manifest.yml": helloYAML,
		"apps/hello/hello":        "bin",
		"web/manifest.yml": `applications:
- name: web
  path: site
  routes:
  - route: WWW.Example.com/Shop/
    options: {loadbalancing: least-connection}
  - route: www.example.com
- name: worker
  no-route: true
`,
		"web/site/index.html": "<h1>hi</h1>",
	})
	if len(p.Errors) > 0 {
		t.Fatalf("errors: %+v", p.Errors)
	}
	byName := map[string]model.App{}
	for _, a := range p.Apps {
		byName[a.Name] = a
	}
	if h := byName["hello"]; h.Instances != 2 || h.File != "apps/hello/manifest.yml" || h.Line == 0 || h.Commit != "c1" ||
		!slices.Equal(h.Routes, []string{"hello.apps.localhost"}) || h.Labels["team"] != "a" {
		t.Fatalf("hello: %+v", h)
	}
	if w := byName["web"]; !slices.Equal(w.Routes, []string{"www.example.com", "www.example.com/Shop"}) {
		t.Fatalf("web routes: %v", w.Routes)
	}
	if w := byName["worker"]; len(w.Routes) != 0 {
		t.Fatalf("worker has routes %v", w.Routes)
	}
	if r := onlyRelease(t, p, "web"); r.SourcePath != "web/site" || r.Run.Command != "" || r.Run.Balance != "least-connections" {
		t.Fatalf("web release: %+v", r)
	}
	if r := onlyRelease(t, p, "hello"); r.Run.Env["GREETING"] != "Hello" || r.Run.MemoryMB != 64 || r.State != model.ReleaseStaging || r.Run.Balance != "" {
		t.Fatalf("hello release: %+v", r)
	}
}

func TestBuildDesiredRefusesWholeCommit(t *testing.T) {
	tests := []struct {
		name     string
		files    map[string]string
		wantFile string
		wantLine int
		wantMsg  string
	}{
		{
			name: "invalid manifest",
			files: map[string]string{
				"a/manifest.yml": helloYAML,
				"b/manifest.yml": "applications:\n- name: b\n  instances: lots\n",
			},
			wantFile: "b/manifest.yml", wantLine: 3, wantMsg: "instances",
		},
		{
			name: "missing source folder",
			files: map[string]string{
				"a/manifest.yml": helloYAML,
				"b/manifest.yml": "applications:\n- name: b\n  path: nowhere\n",
			},
			wantFile: "b/manifest.yml", wantLine: 3, wantMsg: "not in the commit",
		},
		{
			name: "bad network policy",
			files: map[string]string{
				"a/manifest.yml":       helloYAML,
				"network-policies.yml": "policies:\n- source: hello\n  destination: hello\n  protocol: icmp\n  ports: 8080\n",
			},
			wantFile: "network-policies.yml", wantLine: 4, wantMsg: `protocol "icmp"`,
		},
		{
			name: "network policy naming an unknown app",
			files: map[string]string{
				"a/manifest.yml":       helloYAML,
				"network-policies.yml": "policies:\n- {source: hello, destination: backend, ports: 8080}\n",
			},
			wantFile: "network-policies.yml", wantLine: 2, wantMsg: `"backend", which no manifest of the space declares`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := build(t, tc.files)
			if len(p.Apps) != 0 || len(p.Releases) != 0 {
				t.Fatalf("a refused commit still proposes %d apps", len(p.Apps))
			}
			if len(p.Errors) == 0 {
				t.Fatal("no error")
			}
			e := p.Errors[0]
			if e.File != tc.wantFile || e.Line != tc.wantLine || !strings.Contains(e.Message, tc.wantMsg) {
				t.Fatalf("error %+v, want %s:%d containing %q", e, tc.wantFile, tc.wantLine, tc.wantMsg)
			}
		})
	}
}

func TestStagingKeyIgnoresRunSpec(t *testing.T) {
	a := onlyRelease(t, build(t, map[string]string{"apps/hello/manifest.yml": helloYAML, "apps/hello/hello": "bin"}), "hello")
	b := onlyRelease(t, build(t, map[string]string{"apps/hello/manifest.yml": strings.Replace(helloYAML, "Hello", "Howdy", 1), "apps/hello/hello": "bin"}), "hello")
	if a.ID == b.ID {
		t.Fatal("env change kept the release")
	}
	if StagingKey(a) != StagingKey(b) {
		t.Fatal("env change would restage the same source")
	}
}

// TestStagingKeyJavaConfig: the JBP_CONFIG_* variables are staging's
// input (the java buildpack's launcher carries what they set).
func TestStagingKeyJavaConfig(t *testing.T) {
	a := onlyRelease(t, build(t, map[string]string{"apps/hello/manifest.yml": helloYAML, "apps/hello/hello": "bin"}), "hello")
	b := a
	b.Run.Env = map[string]string{"JBP_CONFIG_OPEN_JDK_JRE": "{memory_calculator: {stack_threads: 25}}"}
	for k, v := range a.Run.Env {
		b.Run.Env[k] = v
	}
	if StagingKey(a) == StagingKey(b) {
		t.Fatal("a JBP_CONFIG_* change would reuse the droplet")
	}
}

// TestNetworkPoliciesInReleases: a policy is carried by its destination
// app's release (a new release of that app only); the order of the
// file's entries does not make a new release.
func TestNetworkPoliciesInReleases(t *testing.T) {
	files := func(policies string) map[string]string {
		f := map[string]string{
			"front/manifest.yml": "applications:\n- name: frontend\n",
			"front/index.html":   "hi",
			"back/manifest.yml":  "applications:\n- name: backend\n",
			"back/index.html":    "hi",
		}
		if policies != "" {
			f["network-policies.yml"] = policies
		}
		return f
	}
	none := build(t, files(""))
	both := build(t, files("policies:\n- {source: frontend, destination: backend, ports: 8080}\n"+
		"- {source: frontend, destination: backend, protocol: udp, ports: 9000-9100}\n"))
	swapped := build(t, files("policies:\n- {source: frontend, destination: backend, protocol: udp, ports: 9000-9100}\n"+
		"- {source: frontend, destination: backend, ports: 8080}\n"))
	for _, p := range []Proposal{none, both, swapped} {
		if len(p.Errors) > 0 {
			t.Fatalf("errors %v", p.Errors)
		}
	}
	back := onlyRelease(t, both, "backend")
	want := []model.IngressRule{
		{From: "frontend", Protocol: "tcp", Ports: model.PortRange{Start: 8080, End: 8080}},
		{From: "frontend", Protocol: "udp", Ports: model.PortRange{Start: 9000, End: 9100}},
	}
	if !slices.Equal(back.Run.Ingress, want) {
		t.Errorf("backend's ingress %v, want %v", back.Run.Ingress, want)
	}
	if got := onlyRelease(t, both, "frontend").Run.Ingress; len(got) != 0 {
		t.Errorf("frontend's ingress %v, want none (rules are one-way)", got)
	}
	if onlyRelease(t, none, "backend").ID == back.ID {
		t.Error("a policy added does not make a new release of its destination")
	}
	if onlyRelease(t, none, "frontend").ID != onlyRelease(t, both, "frontend").ID {
		t.Error("a policy added makes a new release of its source")
	}
	if onlyRelease(t, swapped, "backend").ID != back.ID {
		t.Error("the order of the policies makes a new release")
	}
}
