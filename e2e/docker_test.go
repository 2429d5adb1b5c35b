package e2e

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
)

// imageAppSource is a static HTTP server put into the test's images: it
// answers with what shows the image's config applies (its ENV, its
// working directory) under the platform's rules (uid 2000, $PORT, the
// manifest's env).
const imageAppSource = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		fmt.Fprintf(w, "image app: GREETING=%s FROM_MANIFEST=%s uid=%d cwd=%s\n",
			os.Getenv("GREETING"), os.Getenv("FROM_MANIFEST"), os.Getuid(), wd)
	})
	if err := http.ListenAndServe(":"+os.Getenv("PORT"), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
`

// buildImageApp compiles imageAppSource statically.
func buildImageApp(t testing.TB) []byte {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{"main.go": imageAppSource, "go.mod": "module imageapp\n\ngo 1.22\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", "server", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOTOOLCHAIN=local")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the image's app: %v\n%s", err, out)
	}
	bin, err := os.ReadFile(filepath.Join(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// pushImage pushes an image of one layer (/app/server) to ref, with its
// entrypoint, an ENV, /app as working directory and user.
func pushImage(t testing.TB, ref string, bin []byte, user string, auth authn.Authenticator) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "app/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "app/server", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(bin); err != nil {
		t.Fatal(err)
	}
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
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Entrypoint: []string{"/app/server"}, Env: []string{"PATH=/app", "GREETING=hello-from-the-image-env"},
		WorkingDir: "/app", User: user}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithAuth(auth)); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

// waitRelease waits until app's release git asks for satisfies ok.
func (p *platform) waitRelease(t testing.TB, timeout time.Duration, app, what string, ok func(api.Release) error) api.AppDetail {
	t.Helper()
	var d api.AppDetail
	testenv.Eventually(t, timeout, 300*time.Millisecond, app+": "+what, func() error {
		var err error
		if d, err = p.client.App(context.Background(), "dev", app); err != nil {
			return err
		}
		want := cmp.Or(d.Target, d.ReleaseID)
		for _, r := range d.Releases {
			if r.ID == want {
				return ok(r)
			}
		}
		return fmt.Errorf("no release %q yet", want)
	})
	return d
}

// failedWith is a waitRelease condition: staging failed with an error
// holding want.
func failedWith(want string) func(api.Release) error {
	return func(r api.Release) error {
		if r.State != "failed" || !strings.Contains(r.Error, want) {
			return fmt.Errorf("release %s is %s (%q), want failed with %q", r.ID, r.State, r.Error, want)
		}
		return nil
	}
}

// dockerManifest is an app running image, as user ("" for anonymous),
// with one env variable.
func dockerManifest(app, image, user, try string) string {
	m := "applications:\n- name: " + app + "\n  memory: 64M\n  docker:\n    image: " + image + "\n"
	if user != "" {
		m += "    username: " + user + "\n"
	}
	return m + "  env:\n    FROM_MANIFEST: manifest-" + try + "\n"
}

// TestDockerImage deploys an app from an image in a registry that needs a
// password: refused anonymously and with a wrong password (the staging
// error says so in `driftless app`), run with the configured one — the
// image's entrypoint, ENV and working directory, as uid 2000, answering
// through the router; an image whose USER is root is refused with the
// reason; the password is never shown. The app keeps running when the
// registry goes away: its cells pull the copy in the blob store.
func TestDockerImage(t *testing.T) {
	password := fmt.Sprintf("reg-s3cret-%016x", rand.Uint64())
	wrong := fmt.Sprintf("not-it-%016x", rand.Uint64())
	reg := testenv.StartRegistry(t, map[string]string{"deployer": password})
	auth := &authn.Basic{Username: "deployer", Password: password}
	bin := buildImageApp(t)
	image := reg.Addr + "/test/app:v1"
	pushImage(t, image, bin, "2000", auth)
	pushImage(t, reg.Addr+"/test/app:root", bin, "0", auth)

	pushImage(t, reg.Addr+"/test/allowed:v1", bin, "root", auth)
	// The platform's policies: the example quota and image policies, the
	// latter allowing the root images under test/allowed.
	policies := policyRepo(t, "default:\n  memory: 4G\n  instances: 20\n  instance_memory: 1G\n  routes: 50\n"+
		"  root_images: [\""+reg.Addr+"/test/allowed:\"]\n")
	root, err := children.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	imagesRego, err := os.ReadFile(filepath.Join(root, "examples", "policies", "images.rego"))
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, policies, map[string]string{"images.rego": string(imagesRego)})
	commitPolicy(t, policies, "root images of test/allowed may run")

	p := startDev(t, "--docker-password", reg.Addr+"="+wrong, "--policies", policies)
	ctx := context.Background()

	// Anonymous: the registry refuses.
	p.write(map[string]string{"img/manifest.yml": dockerManifest("img", image, "", "1")})
	p.commitAll("img, anonymous")
	_, _ = p.client.Sync(ctx, false, 0)
	p.waitRelease(t, time.Minute, "img", "refused anonymously", failedWith("UNAUTHORIZED"))
	// A wrong password: refused too, and the error does not show it.
	p.write(map[string]string{"img/manifest.yml": dockerManifest("img", image, "deployer", "2")})
	p.commitAll("img as deployer")
	_, _ = p.client.Sync(ctx, false, 0)
	d := p.waitRelease(t, time.Minute, "img", "refused with a wrong password", failedWith("UNAUTHORIZED"))
	if out, err := p.cli("app", "img"); err != nil || !strings.Contains(out, "UNAUTHORIZED") || strings.Contains(out, wrong) {
		t.Errorf("driftless app img after a wrong password: %v\n%s", err, out)
	}
	if d.State == "running" {
		t.Errorf("img runs without a good password: %+v", d)
	}

	// The right password (the controller's configuration): it runs.
	args := p.cmd.Args[1:]
	for i, a := range args {
		if a == reg.Addr+"="+wrong {
			args[i] = reg.Addr + "=" + password
		}
	}
	if !p.interrupt() {
		t.Fatal("driftless dev did not stop")
	}
	p.launch(args, p.cmd.Stdout)
	p.waitAPI()
	p.write(map[string]string{"img/manifest.yml": dockerManifest("img", image, "deployer", "3")})
	p.commitAll("img, password configured")
	_, _ = p.client.Sync(ctx, false, 0)
	p.waitAnswer(t, 2*time.Minute, "img.apps.localhost", "image app: GREETING=hello-from-the-image-env FROM_MANIFEST=manifest-3 uid=2000 cwd=/app")
	d = p.waitRelease(t, 10*time.Second, "img", "staged from the image", func(r api.Release) error {
		if r.State != "staged" || r.Buildpack != "docker" || r.Image != image || !strings.HasPrefix(r.Droplet, "sha256:") {
			return fmt.Errorf("release %+v", r)
		}
		return nil
	})
	if log := stagingLog(t, d, d.ReleaseID); !strings.Contains(log, "test/app@sha256:") || !strings.Contains(log, `entrypoint ["/app/server"]`) {
		t.Errorf("staging log:\n%s", log)
	}

	// A root image: refused, with the reason.
	p.write(map[string]string{"rooty/manifest.yml": dockerManifest("rooty", reg.Addr+"/test/app:root", "deployer", "1")})
	p.commitAll("a root image")
	_, _ = p.client.Sync(ctx, false, 0)
	p.waitRelease(t, time.Minute, "rooty", "refused as root", failedWith("runs as root (USER 0); driftless runs instances as uid 2000 — rebuild it with a USER, or allow it by policy"))
	if out, err := p.cli("app", "rooty"); err != nil || !strings.Contains(out, "runs as root") {
		t.Errorf("driftless app rooty: %v\n%s", err, out)
	}

	// A root image a policy allows (examples/policies/images.rego): it
	// runs, as uid 2000.
	p.write(map[string]string{"allowed/manifest.yml": dockerManifest("allowed", reg.Addr+"/test/allowed:v1", "deployer", "4")})
	p.commitAll("a root image the policies allow")
	_, _ = p.client.Sync(ctx, false, 0)
	p.waitAnswer(t, 2*time.Minute, "allowed.apps.localhost", "FROM_MANIFEST=manifest-4 uid=2000 cwd=/app")
	if d, err := p.client.App(ctx, "dev", "allowed"); err != nil || !strings.Contains(stagingLog(t, d, d.ReleaseID), "allowed by policy images") {
		t.Errorf("staging log of allowed: %v\n%s", err, stagingLog(t, d, d.ReleaseID))
	}

	// The registry goes away: a new instance still starts (from the blob
	// store's copy).
	if err := reg.Proc.Stop(10 * time.Second); err != nil {
		t.Logf("stopping the registry: %v", err)
	}
	for _, c := range p.containers(t) {
		if c["driftless.app"] == "img" {
			p.killTask(t, c["id"])
		}
	}
	testenv.Eventually(t, 2*time.Minute, time.Second, "img restarted without its registry", func() error {
		d, err := p.client.App(ctx, "dev", "img")
		if err != nil {
			return err
		}
		if len(d.Crashes) == 0 {
			return fmt.Errorf("no crash recorded yet")
		}
		code, body, err := p.get("img.apps.localhost", "/")
		if err != nil || code != 200 || !strings.Contains(string(body), "FROM_MANIFEST=manifest-3") {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})

	// The passwords are nowhere the platform shows or stores.
	outputs := map[string][]byte{}
	for _, args := range [][]string{{"events"}, {"app", "img"}, {"app", "rooty"}, {"apps"}, {"status"}} {
		for _, js := range []bool{true, false} {
			a := args
			if js {
				a = append(append([]string{}, args...), "--json")
			}
			out, err := p.cli(a...)
			if err != nil {
				t.Fatal(err)
			}
			outputs["driftless "+strings.Join(a, " ")] = []byte(out)
		}
	}
	appLog, err := p.cli("logs", "img", "--recent")
	if err != nil {
		t.Fatal(err)
	}
	outputs["driftless logs img --recent"] = []byte(appLog)
	p.addStoredOutputs(t, outputs, p.consulKV(t))
	if !bytes.Contains(outputs["driftless events --json"], []byte("img")) || !bytes.Contains(outputs["driftless app img --json"], []byte(image)) {
		t.Errorf("the outputs checked do not name the app: events %s", outputs["driftless events --json"])
	}
	for what, out := range outputs {
		for _, secret := range []string{password, wrong} {
			if bytes.Contains(out, []byte(secret)) {
				t.Errorf("a registry password is in %s", what)
			}
		}
	}
}
