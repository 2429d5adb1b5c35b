package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// TestRouteOwnership: hello's route belongs to space dev, which declared
// it first. Space team-b declaring the same route is refused at the
// route's line and every request still reaches dev's instances; once it
// picks its own host it deploys.
func TestRouteOwnership(t *testing.T) {
	other := filepath.Join(testenv.ShortTempDir(t, "dl-route-"), "team-b")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, other, "init", "-q", "-b", "main")
	testenv.Git(t, other, "commit", "-q", "--allow-empty", "-m", "empty")
	p := startDev(t, "--repo", "team-b="+other)
	t.Cleanup(func() {
		// team-b's app goes first: stopping the platform empties only
		// dev's repository.
		if err := os.RemoveAll(filepath.Join(other, "thief")); err == nil {
			testenv.Git(t, other, "add", "-A")
			testenv.Git(t, other, "commit", "-q", "--allow-empty", "-m", "remove thief")
			_, _ = p.client.Sync(context.Background(), false, 0)
		}
	})
	dev := p.deployHello(t, 2, "Mine")

	// team-b's app "thief" on dev's route: refused, at the route's line.
	thief := strings.NewReplacer("name: hello", "name: thief").Replace(helloManifest(1, "Stolen"))
	addHelloTo(t, other, "thief")
	writeRepo(t, other, map[string]string{"thief/manifest.yml": thief})
	testenv.Git(t, other, "add", "-A")
	testenv.Git(t, other, "commit", "-q", "-m", "thief on hello's route")
	_, _ = p.client.Sync(context.Background(), false, 0)
	line := 1 + slices.Index(strings.Split(thief, "\n"), "  - route: "+helloHost)
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "team-b's commit refused", func() error {
		st, err := p.client.Status(context.Background())
		if err != nil {
			return err
		}
		for _, s := range st.Sources {
			if s.Space == "team-b" && slices.ContainsFunc(s.Errors, func(pr model.Problem) bool {
				return pr.File == "thief/manifest.yml" && pr.Line == line &&
					strings.Contains(pr.Message, `route `+helloHost+` belongs to space "dev" (app hello)`)
			}) {
				return nil
			}
		}
		return fmt.Errorf("sources %+v", st.Sources)
	})
	seen, err := p.sample(helloHost, 12)
	if err != nil {
		t.Fatal(err)
	}
	for guid, in := range seen {
		if _, ok := dev[guid]; !ok || in.Greeting != "Mine" {
			t.Fatalf("a request reached %s (%+v), not one of dev's instances %v", guid, in, guids(dev))
		}
	}
	if _, err := p.client.App(context.Background(), "team-b", "thief"); err == nil {
		t.Fatal("app thief exists in team-b")
	}

	// Its own host deploys.
	writeRepo(t, other, map[string]string{"thief/manifest.yml": strings.ReplaceAll(thief, helloHost, "thief.apps.localhost")})
	testenv.Git(t, other, "commit", "-q", "-am", "own route")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitAnswer(t, 90*time.Second, "thief.apps.localhost", "Stolen")
}
