package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// sidecarManifest is app sc: hello started once its sidecar has written
// its greeting into /tmp, so that the greeting proves the sidecar runs in
// the instance's container (its file system) with its environment.
const sidecarManifest = `applications:
- name: sc
  memory: 128M
  buildpacks: [binary_buildpack]
  command: 'while [ ! -s /tmp/sidecar-says ]; do sleep 0.1; done; GREETING="$(cat /tmp/sidecar-says)" exec ./hello'
  sidecars:
  - name: watcher
    process_types: [web]
    command: 'echo "sidecar up as uid $(id -u)"; echo "Sidecar-of-$INSTANCE_GUID" > /tmp/sidecar-says; exec sleep 100000'
    memory: 32M
`

// killSidecar kills process sidecar-NAME in container id.
func (p *platform) killSidecar(t testing.TB, id, name string) {
	t.Helper()
	p.withTask(t, id, func(ctx context.Context, task containerd.Task) {
		proc, err := task.LoadProcess(ctx, "sidecar-"+name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := proc.Kill(ctx, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	})
}

// waitSidecarInfo waits until sc answers /info with the greeting its
// sidecar wrote, for an instance other than not; it returns the instance.
func (p *platform) waitSidecarInfo(t testing.TB, timeout time.Duration, not string) info {
	t.Helper()
	var in info
	testenv.Eventually(t, timeout, 500*time.Millisecond, "sc answers with its sidecar's greeting", func() error {
		code, body, err := p.get("sc.apps.localhost", "/info")
		if err != nil {
			return err
		}
		if code != 200 || json.Unmarshal(body, &in) != nil {
			a, _ := p.client.App(context.Background(), "dev", "sc")
			return fmt.Errorf("%d %q (app %s, problems %q)", code, body, a.State, a.Problems)
		}
		if in.GUID == not || in.Greeting != "Sidecar-of-"+in.GUID {
			return fmt.Errorf("instance %s greets %q", in.GUID, in.Greeting)
		}
		return nil
	})
	return in
}

// TestSidecar runs an app with a sidecar in each instance's container:
// the app reads what the sidecar wrote, the sidecar's output is in the
// app's logs under its name; a sidecar that exits crashes the instance
// (the crash names it) and the instance is restarted — also after an
// agent restart, whose adoption watches the sidecars again.
func TestSidecar(t *testing.T) {
	p := startDev(t)
	p.addHello("sc")
	p.write(map[string]string{"sc/manifest.yml": sidecarManifest})
	p.commitAll("sc with a sidecar")
	_, _ = p.client.Sync(context.Background(), false, 0)
	first := p.waitSidecarInfo(t, 3*time.Minute, "")
	testenv.Eventually(t, 30*time.Second, 500*time.Millisecond, "the sidecar's output in the app's logs", func() error {
		out, err := p.cli("logs", "sc", "--recent")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "[APP/SIDECAR/WATCHER/0] sidecar up as uid 2000") {
			return fmt.Errorf("logs:\n%s", out)
		}
		return nil
	})

	crashedBy := func(guid string) error {
		evs, err := p.client.Events(context.Background(), "dev", "sc")
		if err != nil {
			return err
		}
		for _, e := range evs {
			if e.Kind == model.EventCrashed && e.Instance == guid && strings.Contains(e.Message, "sidecar watcher exited with status 137") {
				return nil
			}
		}
		return fmt.Errorf("no crash event of %s naming the sidecar in %d events", guid, len(evs))
	}

	// The sidecar exits: the instance crashes, and is restarted.
	p.killSidecar(t, first.GUID, "watcher")
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "crash event naming the sidecar", func() error { return crashedBy(first.GUID) })
	second := p.waitSidecarInfo(t, 2*time.Minute, first.GUID)

	// After an agent restart, the adopted instance's sidecar is watched
	// again.
	p.restart()
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "sc adopted", func() error {
		d, err := p.client.App(context.Background(), "dev", "sc")
		if err != nil {
			return err
		}
		for _, in := range d.Instances {
			if in.GUID == second.GUID && in.State == model.StateRunning {
				return nil
			}
		}
		return fmt.Errorf("instances %+v", d.Instances)
	})
	p.killSidecar(t, second.GUID, "watcher")
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "crash event naming the adopted sidecar", func() error { return crashedBy(second.GUID) })
	p.waitSidecarInfo(t, 2*time.Minute, second.GUID)
}
