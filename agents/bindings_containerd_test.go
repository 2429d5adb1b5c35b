package agents

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
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

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// busyboxImage pushes a one-layer image (a static busybox with a few
// applets, a vcap user) to a registry on loopback and returns its digest
// reference.
func busyboxImage(t *testing.T) string {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("reading /bin/busybox (apt-get install busybox-static; `make setup`): %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.ModTime, h.Format, h.Size = time.Unix(1700000000, 0), tar.FormatPAX, int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"bin", "etc", "home", "proc", "sys", "dev", "tmp"} {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "home/vcap/", Mode: 0o755, Uid: model.VcapUID, Gid: model.VcapUID}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755}, bb)
	for _, a := range []string{"sh", "cat", "echo", "grep", "id", "mkdir", "sleep", "touch"} {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\nvcap:x:2000:2000:vcap:/home/vcap:/bin/sh\n"))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644}, []byte("root:x:0:\nvcap:x:2000:\n"))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
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
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Config = v1.Config{Env: []string{"PATH=/bin"}, Cmd: []string{"/bin/sh"}, WorkingDir: "/"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	tag, err := name.NewTag(host+"/droplets/dev/hello:latest", name.Insecure)
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
	return host + "/droplets/dev/hello@" + d.String()
}

// loopbackNet is fakeNet giving containers a namespace of their own with
// only a loopback interface (no CNI).
type loopbackNet struct{ *fakeNet }

// Attach implements Networks.
func (n loopbackNet) Attach(ctx context.Context, id string, hostPort, containerPort int) (*network.Attachment, error) {
	att, err := n.fakeNet.Attach(ctx, id, hostPort, containerPort)
	if att != nil {
		cp := *att
		cp.NetNSPath = ""
		att = &cp
	}
	return att, err
}

// capturePub keeps every message published, as JSON, but the instance's
// own output (which prints its credentials on purpose).
type capturePub struct {
	mu  sync.Mutex
	all bytes.Buffer
}

// Publish implements Publisher.
func (p *capturePub) Publish(subject string, v any) error {
	if l, ok := v.(model.LogLine); ok && l.Source == model.LogApp {
		return nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(&p.all, "%s %s\n", subject, data)
	return nil
}

func (p *capturePub) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all.String()
}

// lockedBuffer is a buffer for a logger written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// bindingsScript prints what an instance sees of its bindings, then sleeps.
const bindingsScript = `echo "VCAP=$VCAP_SERVICES"
echo "ROOT=$SERVICE_BINDING_ROOT"
echo "UID=$(id -u)"
for f in db/type db/provider db/uri db/port db/tls logs/type logs/token; do echo "FILE $f=$(cat /bindings/$f)"; done
if touch /bindings/x 2>/dev/null || touch /bindings/db/x 2>/dev/null || mkdir /bindings/y 2>/dev/null || (echo x >/bindings/db/uri) 2>/dev/null; then echo WRITE=yes; else echo WRITE=no; fi
echo "MOUNT=$(grep ' /bindings ' /proc/mounts)"
echo DONE
exec sleep 600
`

// TestBindingsInContainer (real containerd): an instance started with two
// bindings sees VCAP_SERVICES in Cloud Foundry's shape and its bindings'
// files, its own and read-only; neither the record on disk, the agent's
// log nor anything it publishes holds a credential; an agent restart
// adopts the instance with its folder, and the stop removes the folder.
func TestBindingsInContainer(t *testing.T) {
	ctrd := testenv.StartContainerd(t)
	droplet := busyboxImage(t)
	dir := t.TempDir()
	if err := makeDataDirs(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := runtime.New(ctx, runtime.Config{Address: ctrd.Address, LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Close() })
	logs, pub := &lockedBuffer{}, &capturePub{}
	newCell := func() (*Agent, func()) {
		j := &journal{}
		cfg := Config{CellID: "cell-1", Address: "127.0.0.1", DataDir: dir, Drain: time.Millisecond,
			SyncInterval: time.Hour, StopGrace: time.Second,
			Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
		cfg.defaults()
		a, err := newAgent(cfg, parts{engine: rt, net: loopbackNet{&fakeNet{j: j}}, ports: &fakePorts{j: j},
			registry: &fakeRegistry{j: j}, pub: pub, probe: &fakeProber{}})
		if err != nil {
			t.Fatal(err)
		}
		actx, cancel := context.WithCancel(context.Background())
		a.ctx = actx
		end := func() {
			cancel()
			a.wg.Wait()
		}
		t.Cleanup(end)
		return a, end
	}
	stateOf := func(a *Agent, guid string) model.InstanceState {
		a.mu.Lock()
		defer a.mu.Unlock()
		if in := a.insts[guid]; in != nil {
			return in.status.State
		}
		return ""
	}
	waitState := func(a *Agent, guid string, want model.InstanceState) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, 50*time.Millisecond, fmt.Sprintf("%s %s", guid, want), func() error {
			if st := stateOf(a, guid); st != want {
				return fmt.Errorf("state %q", st)
			}
			return nil
		})
	}

	a, endA := newCell()
	ref := model.InstanceRef{GUID: "bind-" + fmt.Sprint(time.Now().UnixNano()), Space: "dev", App: "hello", ReleaseID: "r1"}
	run := model.RunSpec{Droplet: droplet, MemoryMB: 64, Command: bindingsScript, Env: map[string]string{"SECRET": "s"},
		HealthCheck: model.HealthCheck{Type: model.HealthProcess}, Bindings: testBindings()}
	a.mu.Lock()
	err = a.acceptLocked(ref, run)
	a.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.Stop(context.Background(), ref.GUID, time.Second) })
	waitState(a, ref.GUID, model.StateRunning)
	var out string
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "the instance's report", func() error {
		data, err := os.ReadFile(rt.LogPath(ref.GUID))
		if out = string(data); !strings.Contains(out, "DONE\n") {
			return fmt.Errorf("output %q (%v)", out, err)
		}
		return nil
	})
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			lines[k] = v
		}
	}
	tests := []struct{ key, want string }{
		{"VCAP", wantVcapServices},
		{"ROOT", "/bindings"},
		{"UID", "2000"},
		{"FILE db/type", "postgres"},
		{"FILE db/provider", "driftless"},
		{"FILE db/uri", "postgres://u:pg-s3cret@db:5432/orders"},
		{"FILE db/port", "5432"},
		{"FILE db/tls", `{"ca":"CA-PEM","verify":true}`},
		{"FILE logs/type", "user-provided"},
		{"FILE logs/token", "ups-s3cret"},
		{"WRITE", "no"},
	}
	for _, tt := range tests {
		if got := lines[tt.key]; got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.key, got, tt.want)
		}
	}
	if m := strings.Fields(lines["MOUNT"]); len(m) < 4 || !strings.HasPrefix(m[3], "ro,") {
		t.Errorf("/bindings is not mounted read-only: %q", lines["MOUNT"])
	}
	host := a.bindingsDir(ref.GUID)
	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{".", os.ModeDir | 0o500}, {"db", os.ModeDir | 0o500}, {"db/uri", 0o400}, {"logs/token", 0o400}} {
		fi, err := os.Stat(filepath.Join(host, p.path))
		if err != nil {
			t.Fatal(err)
		}
		if uid, gid := owner(fi); fi.Mode() != p.mode || uid != model.VcapUID || gid != model.VcapUID {
			t.Errorf("%s: %s %d:%d, want %s 2000:2000", p.path, fi.Mode(), uid, gid, p.mode)
		}
	}
	if fi, err := os.Stat(filepath.Dir(host)); err != nil || fi.Mode() != os.ModeDir|0o700 {
		t.Errorf("the bindings' parent folder: %v, %v; want drwx------", fi.Mode(), err)
	}
	record, err := os.ReadFile(a.recordPath(ref.GUID))
	if err != nil {
		t.Fatal(err)
	}

	// An agent restart: the next agent adopts the instance and its folder.
	endA()
	b, _ := newCell()
	if err := b.adopt(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(b, ref.GUID); st != model.StateRunning {
		t.Fatalf("adopted instance is %s", st)
	}
	if _, err := os.Stat(filepath.Join(host, "db", "uri")); err != nil {
		t.Fatalf("adoption lost the bindings: %v", err)
	}
	b.mu.Lock()
	b.stopLocked(ref.GUID, "test")
	b.mu.Unlock()
	waitState(b, ref.GUID, "")
	if _, err := os.Stat(host); !os.IsNotExist(err) {
		t.Fatalf("the stop left the bindings folder: %v", err)
	}

	for what, text := range map[string]string{"record": string(record), "agent log": logs.String(), "published": pub.String()} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("the %s holds the credential %q:\n%s", what, s, text)
			}
		}
	}
	if !strings.Contains(logs.String(), "instance RUNNING") {
		t.Errorf("the agent's log says nothing of the instance:\n%s", logs.String())
	}
}
