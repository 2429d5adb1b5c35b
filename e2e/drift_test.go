package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/agents"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
)

// TestDrift changes by hand what the platform runs and checks that it is
// put back within a convergence interval or two: a Consul registration
// deleted by hand comes back, and a container started by hand with
// driftless labels is removed.
func TestDrift(t *testing.T) {
	p := startDev(t)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Drift")})
	p.commitAll("hello")
	_, _ = p.client.Sync(context.Background(), false, 0)
	seen := p.waitServing(t, 120*time.Second, 2, greetingIs("Drift"))
	victim := guids(seen)[0]

	// A registration deleted by hand is put back.
	cc := p.mustConsulAPI(t)
	node := catalog.CellNode("dev-cell")
	if _, err := cc.Catalog().Deregister(&consul.CatalogDeregistration{Node: node, ServiceID: victim}, nil); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, "the registration is back", func() error {
		list, _, err := cc.Catalog().NodeServiceList(node, nil)
		if err != nil {
			return err
		}
		if list == nil || !slices.ContainsFunc(list.Services, func(s *consul.AgentService) bool { return s.ID == victim }) {
			return errors.New("not registered")
		}
		return nil
	})
	t.Logf("registration back after %s", time.Since(deleted).Round(100*time.Millisecond))
	p.waitServing(t, 10*time.Second, 2, greetingIs("Drift"))

	// A container started by hand with driftless labels is removed.
	c, err := containerd.New(p.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := namespaces.WithNamespace(context.Background(), "driftless")
	imgs, err := c.ListImages(ctx)
	if err != nil || len(imgs) == 0 {
		t.Fatalf("images: %v (%d)", err, len(imgs))
	}
	img := imgs[0]
	rogue := "rogue-by-hand"
	cont, err := c.NewContainer(ctx, rogue,
		containerd.WithImage(img),
		containerd.WithNewSnapshot(rogue+"-snap", img),
		containerd.WithNewSpec(oci.WithImageConfig(img), oci.WithProcessArgs("/bin/sleep", "600")),
		containerd.WithContainerLabels(map[string]string{agents.LabelGUID: rogue, agents.LabelApp: "hello", agents.LabelSpace: "dev"}))
	if err != nil {
		t.Fatal(err)
	}
	task, err := cont.NewTask(ctx, cio.NullIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Start(ctx); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the rogue container is removed", func() error {
		for _, labels := range p.containers(t) {
			if labels["id"] == rogue {
				return fmt.Errorf("%s still exists", rogue)
			}
		}
		return nil
	})
	t.Logf("rogue container removed after %s", time.Since(started).Round(100*time.Millisecond))
	p.waitServing(t, 10*time.Second, 2, greetingIs("Drift"))
}
