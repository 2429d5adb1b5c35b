package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
)

const helloHost = "hello.apps.localhost"

func helloManifest(instances int, greeting string) string {
	return helloWith(instances, map[string]string{"GREETING": greeting}, "")
}

// appByName finds an app in `driftless apps --json`.
func (p *platform) app(name string) (api.App, error) {
	var apps []api.App
	if err := p.cliJSON(&apps, "apps"); err != nil {
		return api.App{}, err
	}
	for _, a := range apps {
		if a.Name == name {
			return a, nil
		}
	}
	return api.App{}, fmt.Errorf("no app %s in %+v", name, apps)
}

// waitServing waits until the router answers for hello with exactly n
// instances (all indexes 0..n-1 seen) that satisfy ok.
func (p *platform) waitServing(t testing.TB, timeout time.Duration, n int, ok func(info) error) map[string]info {
	t.Helper()
	var seen map[string]info
	testenv.Eventually(t, timeout, 300*time.Millisecond, fmt.Sprintf("%d instances of hello answer", n), func() error {
		var err error
		if seen, err = p.sample(helloHost, 8*n); err != nil {
			return err
		}
		idx := map[string]bool{}
		for _, in := range seen {
			if err := ok(in); err != nil {
				return err
			}
			idx[in.Index] = true
		}
		if len(seen) != n || len(idx) != n {
			return fmt.Errorf("answers from %d instances (indexes %v), want %d", len(seen), keys(idx), n)
		}
		a, err := p.app("hello")
		if err != nil {
			return err
		}
		if a.Running != n || a.Desired != n || a.State != api.AppRunning {
			return fmt.Errorf("apps says %s %d/%d", a.State, a.Running, a.Desired)
		}
		return nil
	})
	return seen
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func guids(m map[string]info) []string { return keys(m) }

// TestWalkingSkeleton is issue 2's acceptance: a real git repository driven
// through `driftless dev`, checked through the router, the CLI, containerd
// and Consul.
func TestWalkingSkeleton(t *testing.T) {
	p := startDev(t)
	greeting := func(g string) func(info) error {
		return func(in info) error {
			if in.Greeting != g {
				return fmt.Errorf("instance %s greets %q, want %q", in.Index, in.Greeting, g)
			}
			return nil
		}
	}

	// 1. Two instances answer through the router.
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Hello")})
	p.addHello("apps/hello")
	first := p.commitAll("hello, twice")
	seen := p.waitServing(t, 120*time.Second, 2, greeting("Hello"))
	a, _ := p.app("hello")
	if a.Release != first || a.Space != "dev" || !slices.Equal(a.Routes, []string{helloHost}) {
		t.Fatalf("apps --json: %+v, want release %s, space dev, route %s", a, first, helloHost)
	}
	rel1 := a.ReleaseID

	// 2. A commit to 3 gives 3; scaling keeps the release and the running instances.
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(3, "Hello")})
	p.commitAll("scale to 3")
	if out, err := p.cli("sync"); err != nil {
		t.Fatalf("sync: %v\n%s", err, out)
	}
	three := p.waitServing(t, 60*time.Second, 3, greeting("Hello"))
	for g := range seen {
		if _, kept := three[g]; !kept {
			t.Fatalf("scaling up restarted instance %s", g)
		}
	}

	// 3. Changing env rolls out a new release: new value everywhere, only new instances left.
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(3, "Howdy")})
	p.commitAll("new greeting")
	howdy := p.waitServing(t, 90*time.Second, 3, greeting("Howdy"))
	for g := range howdy {
		if _, old := three[g]; old {
			t.Fatalf("instance %s of the old release still serves", g)
		}
	}
	var detail api.AppDetail
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "only new-release instances remain", func() error {
		if err := p.cliJSON(&detail, "app", "hello"); err != nil {
			return err
		}
		if detail.ReleaseID == rel1 {
			return errors.New("release did not change")
		}
		for _, in := range detail.Instances {
			if in.ReleaseID != detail.ReleaseID {
				return fmt.Errorf("instance %d of release %s remains", in.Index, in.ReleaseID)
			}
		}
		if len(detail.Instances) != 3 {
			return fmt.Errorf("%d instances", len(detail.Instances))
		}
		return nil
	})

	// 4. A commit touching another app does not restart hello.
	p.write(map[string]string{"apps/other/manifest.yml": `applications:
- name: other
  memory: 32M
  disk_quota: 64M
  buildpacks: [binary_buildpack]
  command: ./run.sh
  no-route: true
  health-check-type: process
`, "apps/other/run.sh": "#!/bin/sh\nexec sleep 100000\n"})
	p.commitAll("another app")
	testenv.Eventually(t, 90*time.Second, 300*time.Millisecond, "other runs", func() error {
		o, err := p.app("other")
		if err != nil {
			return err
		}
		if o.State != api.AppRunning {
			return fmt.Errorf("other is %s", o.State)
		}
		return nil
	})
	after := p.waitServing(t, 10*time.Second, 3, greeting("Howdy"))
	if !slices.Equal(guids(after), guids(howdy)) {
		t.Fatalf("hello restarted by another app's commit: %v → %v", guids(howdy), guids(after))
	}

	// 5. An invalid manifest is refused with file:line; hello keeps serving.
	// So is one asking for more than the engines take (a 10 MB env value:
	// Consul stores at most 512 KB, NATS sends at most 1 MB), at the env
	// key, instead of being applied and failing later.
	for _, bad := range []struct {
		name, manifest string
		line           int
		says           string
	}{
		{"broken manifest", strings.Replace(helloManifest(3, "Howdy"), "instances: 3", "instances: lots", 1), 3, "instances"},
		{"10 MB env value", helloWith(3, map[string]string{"GREETING": "Howdy", "BLOB": strings.Repeat("x", 10<<20)}, ""), 12, "at most 130 KB"},
	} {
		p.write(map[string]string{"apps/hello/manifest.yml": bad.manifest})
		commit := p.commitAll(bad.name)
		testenv.Eventually(t, 20*time.Second, 300*time.Millisecond, bad.name+": the error shows in status", func() error {
			var st api.Status
			if err := p.cliJSON(&st, "status"); err != nil {
				return err
			}
			if len(st.Sources) != 1 {
				return fmt.Errorf("%d sources", len(st.Sources))
			}
			s := st.Sources[0]
			if s.LastSeen != commit || len(s.Errors) == 0 {
				return fmt.Errorf("source %+v", s)
			}
			e := s.Errors[0]
			if e.File != "apps/hello/manifest.yml" || e.Line != bad.line || !strings.Contains(e.Message, bad.says) {
				return fmt.Errorf("error %+v, want apps/hello/manifest.yml line %d saying %q", e, bad.line, bad.says)
			}
			if s.LastApplied == commit {
				return errors.New("the refused commit was applied")
			}
			return nil
		})
		if still := p.waitServing(t, 10*time.Second, 3, greeting("Howdy")); !slices.Equal(guids(still), guids(howdy)) {
			t.Fatalf("a refused commit (%s) disturbed hello", bad.name)
		}
	}
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(3, "Howdy")})
	p.commitAll("fix the manifest")

	// 6. A task killed by hand is noticed and the instance replaced.
	victim := ""
	for g, in := range howdy {
		if in.Index == "1" {
			victim = g
		}
	}
	p.killTask(t, victim)
	replaced := p.waitServing(t, 60*time.Second, 3, func(in info) error {
		if in.GUID == victim {
			return errors.New("the killed instance still answers")
		}
		return greeting("Howdy")(in)
	})
	if _, ok := replaced[victim]; ok {
		t.Fatal("killed instance not replaced")
	}

	// 7. Removing the app stops its containers, deregisters it and 404s its route.
	p.write(map[string]string{"apps/hello": ""})
	p.commitAll("remove hello")
	testenv.Eventually(t, 60*time.Second, 300*time.Millisecond, "hello is gone", func() error {
		code, body, err := p.get(helloHost, "/")
		if err != nil {
			return err
		}
		if code != http.StatusNotFound {
			return fmt.Errorf("route answers %d: %s", code, body)
		}
		for _, labels := range p.containers(t) {
			if labels["driftless.app"] == "hello" {
				return fmt.Errorf("container %s of hello remains", labels["id"])
			}
		}
		services, err := p.consulServices()
		if err != nil {
			return err
		}
		if slices.Contains(services, catalog.ServiceName("dev", "hello")) {
			return errors.New("hello is still registered in consul")
		}
		if _, err := p.app("hello"); err == nil {
			return errors.New("hello is still listed")
		}
		return nil
	})
}
