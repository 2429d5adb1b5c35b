package staging

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
)

// tree writes files (path → content) under a new folder.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(body, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDetection(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		command string
		want    string
	}{
		{"go module", map[string]string{"go.mod": "module x", "main.go": "package main"}, "", "go"},
		{"node app", map[string]string{"package.json": "{}", "index.js": ""}, "", "node"},
		{"python requirements", map[string]string{"requirements.txt": ""}, "", "python"},
		{"python script", map[string]string{"app.py": "print(1)"}, "", "python"},
		{"static site", map[string]string{"index.html": "<h1>hi</h1>"}, "", "static"},
		{"staticfile", map[string]string{"Staticfile": "root: public", "public/index.html": ""}, "", "static"},
		{"binary", map[string]string{"server": "#!/bin/sh\n"}, "./server", "binary"},
		{"go wins over a static page", map[string]string{"go.mod": "module x", "index.html": ""}, "", "go"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bp, err := choose(nil, tree(t, tt.files), Build{Command: tt.command})
			if err != nil {
				t.Fatal(err)
			}
			if bp.Name() != tt.want {
				t.Fatalf("detected %s, want %s", bp.Name(), tt.want)
			}
		})
	}
}

func TestCloudFoundryNames(t *testing.T) {
	for cf, want := range map[string]string{"go_buildpack": "go", "nodejs_buildpack": "node", "python_buildpack": "python",
		"staticfile_buildpack": "static", "binary_buildpack": "binary"} {
		bp, err := lookup(cf)
		if err != nil || bp.Name() != want {
			t.Errorf("lookup(%s) = %v, %v; want %s", cf, bp, err, want)
		}
	}
}

func TestGoPrepare(t *testing.T) {
	goroot := tree(t, map[string]string{"bin/go": "#!/bin/sh\n"})
	tests := []struct {
		name      string
		files     map[string]string
		wantPkg   string
		wantStart string
		wantErr   string
	}{
		{"main at the root", map[string]string{"go.mod": "module example.com/hello\n\ngo 1.22\n", "main.go": "package main\n"}, " '.'", "./bin/hello", ""},
		{"cmd/<name>", map[string]string{"go.mod": "module example.com/svc", "lib.go": "package svc", "cmd/svc/main.go": "// c\npackage main"}, " './cmd/svc'", "./bin/svc", ""},
		{"the only command", map[string]string{"go.mod": "module github.com/a/b", "cmd/server/main.go": "package main"}, " './cmd/server'", "./bin/b", ""},
		{"no main package", map[string]string{"go.mod": "module x/lib", "lib.go": "package lib"}, "", "", "no main package"},
		{"no module line", map[string]string{"go.mod": "go 1.22"}, "", "", "declares no module"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := goBuildpack{}.Prepare(tree(t, tt.files), Build{}, Cell{GoRoot: goroot}, func(string) {})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if plan.Start != tt.wantStart || !strings.Contains(plan.Compile, tt.wantPkg) {
				t.Fatalf("start %q, compile %q; want %q and package%s", plan.Start, plan.Compile, tt.wantStart, tt.wantPkg)
			}
			if len(plan.Tools) != 1 || plan.Tools[0].Source != goroot || !plan.Tools[0].ReadOnly {
				t.Fatalf("tools %+v: want the Go root read-only", plan.Tools)
			}
		})
	}
}

func TestNodeStart(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"start script", map[string]string{"package.json": `{"scripts":{"start":"node srv.js"}}`}, "npm start"},
		{"main", map[string]string{"package.json": `{"main":"lib/app.js"}`}, "node 'lib/app.js'"},
		{"server.js", map[string]string{"package.json": `{}`, "server.js": ""}, "node server.js"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := nodeBuildpack{}.Prepare(tree(t, tt.files), Build{}, Cell{}, func(string) {})
			if err != nil {
				t.Fatal(err)
			}
			if plan.Start != tt.want || !strings.Contains(plan.Compile, "npm install") {
				t.Fatalf("start %q compile %q", plan.Start, plan.Compile)
			}
		})
	}
	plan, err := nodeBuildpack{}.Prepare(tree(t, map[string]string{"package.json": "{}", "package-lock.json": "{}", "index.js": ""}), Build{}, Cell{}, func(string) {})
	if err != nil || !strings.Contains(plan.Compile, "npm ci") {
		t.Fatalf("with a lock file: %q %v; want npm ci", plan.Compile, err)
	}
}

// TestStageStaticWithProcfile stages a static site: the server is copied
// into the droplet, nothing compiles; a Procfile's web line wins over the
// buildpack's start command.
func TestStageStaticWithProcfile(t *testing.T) {
	st, store, url := setup(t)
	server := filepath.Join(t.TempDir(), "driftless-static")
	if err := os.WriteFile(server, []byte("#!/bin/sh\necho static\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	st.cfg.Cell.StaticServer = server
	site := []entry{{name: "public/", dir: true, mode: 0o755}, {name: "public/index.html", body: "<h1>hi</h1>", mode: 0o644},
		{name: "Staticfile", body: "root: public\n", mode: 0o644}}
	res, err := st.Stage(context.Background(), bus.StageRequest{Space: "dev", App: "site", Source: put(t, store, sourceTar(t, site)), BlobStore: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Buildpack != "static" || res.StartCommand != "./.driftless/static-server -root 'public'" {
		t.Fatalf("result %+v", res)
	}
	files := dropletFiles(t, url, "site", res.Droplet)
	if string(files["home/vcap/app/.driftless/static-server"]) != "#!/bin/sh\necho static\n" {
		t.Fatalf("static server not in the droplet: %v", keysOf(files))
	}

	withProcfile := append(site, entry{name: "Procfile", body: "web: ./.driftless/static-server -root public -max-age 1m\n", mode: 0o644})
	res, err = st.Stage(context.Background(), bus.StageRequest{Space: "dev", App: "site", Source: put(t, store, sourceTar(t, withProcfile)), BlobStore: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StartCommand != "./.driftless/static-server -root public -max-age 1m" {
		t.Fatalf("start %q, want the Procfile's web line", res.StartCommand)
	}
}

// dropletFiles pulls a droplet and returns the contents of its app layer's
// regular files by name.
func dropletFiles(t *testing.T, url, app, digest string) map[string][]byte {
	t.Helper()
	ref, err := name.ParseReference(blobstore.ImageRef(url, "dev", app, digest), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers: %d %v", len(layers), err)
	}
	rc, err := layers[1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			out[h.Name] = b
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
