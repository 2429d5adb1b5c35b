package runtime

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// applets are the busybox commands the test image links to /bin/busybox.
var applets = []string{"sh", "nc", "httpd", "sleep", "cat", "id", "echo", "grep", "ls", "env", "touch",
	"mkdir", "head", "tail", "wc", "readlink", "hostname", "pwd", "mount", "timeout", "true", "false", "kill", "sed"}

// testImage is a one-layer image: a static busybox with its applets, a
// vcap user (2000), and /www/index.html for httpd.
func testImage(t *testing.T, marker string) v1.Image {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("reading /bin/busybox (apt-get install busybox-static; `make setup`): %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	add := func(h *tar.Header, body []byte) {
		h.ModTime = mtime
		h.Format = tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if len(body) > 0 {
			if _, err := tw.Write(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := func(name string, mode int64, uid int) {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: uid}, nil)
	}
	file := func(name string, mode int64, body string) {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, []byte(body))
	}
	for _, d := range []string{"bin", "etc", "www", "home", "mnt", "proc", "sys", "dev", "run"} {
		dir(d, 0o755, 0)
	}
	dir("tmp", 0o1777, 0)
	dir("home/vcap", 0o755, 2000)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755}, bb)
	sort.Strings(applets)
	for _, a := range applets {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil)
	}
	file("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nvcap:x:2000:2000:vcap:/home/vcap:/bin/sh\n")
	file("etc/group", 0o644, "root:x:0:\nvcap:x:2000:\n")
	file("www/index.html", 0o644, "hello from driftless\n")
	file("etc/marker", 0o644, marker+"\n")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = goruntime.GOARCH
	cf.Config = v1.Config{
		Env:        []string{"PATH=/bin", "IMAGE_VAR=from-image", "FOO=from-image"},
		Cmd:        []string{"/bin/sh", "-c", "echo image default command"},
		WorkingDir: "/",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testRegistry is go-containerregistry's in-memory registry on a loopback
// httptest server, counting manifest requests per repository.
type testRegistry struct {
	host string
	mu   sync.Mutex
	hits map[string]int
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{hits: map[string]int{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if repo, _, ok := strings.Cut(strings.TrimPrefix(req.URL.Path, "/v2/"), "/manifests/"); ok {
			r.mu.Lock()
			r.hits[repo]++
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// manifestHits is how many manifest requests repo has had.
func (r *testRegistry) manifestHits(repo string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hits[repo]
}

// push uploads img as repo:latest and returns its digest reference.
func (r *testRegistry) push(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	tag, err := name.NewTag(r.host+"/"+repo+":latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("pushing the test image: %v", err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	// Pushing counts as manifest requests too: start from zero.
	r.mu.Lock()
	r.hits[repo] = 0
	r.mu.Unlock()
	return r.host + "/" + repo + "@" + d.String()
}
