package staging

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

type entry struct {
	name, body, link string
	mode             int64
	dir              bool
}

func sourceTar(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: e.mode, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.dir:
			h.Typeflag, h.Size = tar.TypeDir, 0
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var scriptApp = []entry{
	{name: "bin/", dir: true, mode: 0o755},
	{name: "run.sh", body: "#!/bin/sh\necho hi\n", mode: 0o755},
	{name: "README", body: "docs", mode: 0o644},
}

func setup(t *testing.T) (*Stager, *blobstore.Store, string) {
	t.Helper()
	store, err := blobstore.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(store.Handler())
	t.Cleanup(srv.Close)
	st, err := New(Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return st, store, srv.URL
}

func put(t *testing.T, store *blobstore.Store, b []byte) string {
	t.Helper()
	d, _, err := store.Put(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestStageBinary(t *testing.T) {
	st, store, url := setup(t)
	ctx := context.Background()
	src := put(t, store, sourceTar(t, scriptApp))
	req := bus.StageRequest{Space: "dev", App: "hello", Source: src, BlobStore: url, Buildpacks: []string{"binary_buildpack"}, Command: "./run.sh --port $PORT"}
	var lines []string
	res, err := st.Stage(ctx, req, func(l string) { lines = append(lines, l) })
	if err != nil {
		t.Fatalf("Stage: %v\n%s", err, strings.Join(lines, "\n"))
	}
	if res.Buildpack != "binary" || res.StartCommand != req.Command || !blobstore.ValidDigest(res.Droplet) || len(res.LogTail) == 0 {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(strings.Join(lines, "\n"), "Uploading droplet") {
		t.Errorf("progress lines: %q", lines)
	}
	// Same source → same droplet, also with a fresh stager and no buildpack named (detection).
	st2, err := New(Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	req.Buildpacks = nil
	res2, err := st2.Stage(ctx, req, nil)
	if err != nil || res2.Droplet != res.Droplet {
		t.Fatalf("restage = %s (%v), want %s", res2.Droplet, err, res.Droplet)
	}

	ref, err := name.ParseReference(blobstore.ImageRef(url, "dev", "hello", res.Droplet), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pulling the droplet: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture == "" || cf.Config.User != "2000:2000" || cf.Config.WorkingDir != AppDir ||
		strings.Join(cf.Config.Cmd, " ") != "/bin/sh -c "+req.Command {
		t.Fatalf("config %+v (os %s arch %s)", cf.Config, cf.OS, cf.Architecture)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers: %d %v", len(layers), err)
	}
	stack := readLayer(t, layers[0])
	if h := stack["bin/busybox"]; h == nil || h.Mode&0o111 == 0 {
		t.Errorf("stack has no executable busybox: %+v", h)
	}
	if h := stack["bin/sh"]; h == nil || h.Linkname != "busybox" {
		t.Errorf("stack sh: %+v", h)
	}
	if h := stack["tmp/"]; h == nil || h.Mode&0o1777 != 0o1777 {
		t.Errorf("stack tmp: %+v", h)
	}
	app := readLayer(t, layers[1])
	if h := app["home/vcap/app/run.sh"]; h == nil || h.Uid != model.VcapUID || h.Gid != model.VcapUID || h.Mode&0o777 != 0o755 {
		t.Errorf("app run.sh: %+v", h)
	}
	if h := app["home/vcap/app/"]; h == nil || h.Uid != model.VcapUID {
		t.Errorf("app folder: %+v", h)
	}
}

// readLayer returns a layer's headers by name; etc/passwd is checked here.
func readLayer(t *testing.T, l interface {
	Uncompressed() (io.ReadCloser, error)
}) map[string]*tar.Header {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "etc/passwd" {
			b, _ := io.ReadAll(tr)
			if !strings.Contains(string(b), "vcap:x:2000:2000:") {
				t.Errorf("/etc/passwd: %q", b)
			}
		}
		out[h.Name] = h
	}
}

func TestStageErrors(t *testing.T) {
	st, store, url := setup(t)
	tests := []struct {
		name       string
		entries    []entry
		buildpacks []string
		stack      string
		command    string
		want       string
	}{
		{"no command", scriptApp, []string{"binary"}, "", "", "needs a command"},
		{"missing program", scriptApp, []string{"binary"}, "", "./server", `"server" is not in the app folder`},
		{"not executable", scriptApp, []string{"binary"}, "", "./README", "not executable"},
		{"unknown buildpack", scriptApp, []string{"cobol"}, "", "./run.sh", `unknown buildpack "cobol" (known: go, node, python, java, static, binary)`},
		{"nothing detected", scriptApp, nil, "", "", "no buildpack detected this app (go: no go.mod; node: no package.json; " +
			"python: no requirements.txt or .py file; java: no META-INF/MANIFEST.MF with a Main-Class, WEB-INF/ or .class file; static: no index.html or Staticfile; binary: the command names no program inside the app folder)"},
		{"stack the buildpack does not run on", []entry{{name: "package.json", body: "{}", mode: 0o644}}, []string{"nodejs_buildpack"}, "tiny", "",
			"the node buildpack does not run on stack tiny (it runs on bookworm)"},
		{"bookworm not built", []entry{{name: "app.py", body: "print(1)", mode: 0o644}}, nil, "", "", "stack bookworm is not installed on this cell"},
		{"python without vendored packages", []entry{{name: "app.py", body: "", mode: 0o644}, {name: "requirements.txt", body: "flask\n", mode: 0o644}},
			nil, "", "", "no vendor/ folder"},
		{"go without a toolchain", []entry{{name: "go.mod", body: "module example.com/x\n", mode: 0o644}}, nil, "", "", "no Go toolchain"},
		{"unknown stack", scriptApp, []string{"binary"}, "windows", "./run.sh", `unknown stack "windows"`},
		{"path traversal", []entry{{name: "../evil", body: "x", mode: 0o644}}, []string{"binary"}, "", "./run.sh", "outside the app folder"},
		{"write through symlink", []entry{{name: "l", link: "/etc"}, {name: "l/passwd", body: "x", mode: 0o644}}, []string{"binary"}, "", "./run.sh", "through the symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := bus.StageRequest{Space: "dev", App: "a", Source: put(t, store, sourceTar(t, tt.entries)), BlobStore: url,
				Buildpacks: tt.buildpacks, Stack: tt.stack, Command: tt.command}
			res, err := st.Stage(context.Background(), req, nil)
			if err == nil || !strings.Contains(res.Error, tt.want) {
				t.Fatalf("error %v / %q, want it to contain %q", err, res.Error, tt.want)
			}
			if len(res.LogTail) == 0 || res.Droplet != "" {
				t.Fatalf("result %+v", res)
			}
		})
	}
}
