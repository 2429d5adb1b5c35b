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

	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// policyRepo makes a git repository with examples/policies' quota policy
// and the given quotas.yml.
func policyRepo(t *testing.T, quotas string) string {
	t.Helper()
	root, err := children.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(testenv.ShortTempDir(t, "dl-pol-"), "policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(root, "examples", "policies", "quota.rego"))
	if err != nil {
		t.Fatal(err)
	}
	writePolicy(t, dir, map[string]string{"quota.rego": string(rego), "quotas.yml": quotas})
	testenv.Git(t, dir, "init", "-q", "-b", "main")
	commitPolicy(t, dir, "policies")
	return dir
}

func writePolicy(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func commitPolicy(t *testing.T, dir, msg string) {
	t.Helper()
	testenv.Git(t, dir, "add", "-A")
	testenv.Git(t, dir, "commit", "-q", "-m", msg)
}

const quotas3 = "default:\n  memory: 1G\n  instances: 3\n  instance_memory: 256M\n  routes: 10\n"

// TestPolicies is issue 6's acceptance: a commit over the space's instance
// quota is denied (the old count keeps running, the violation names the
// quota and the numbers); raising the quota in the policy repository
// applies the same commit with no new app commit; a policy commit with a
// Rego syntax error is refused with file:line and the previous policies
// stay enforced.
func TestPolicies(t *testing.T) {
	pol := policyRepo(t, quotas3)
	p := startDev(t, "--policies", pol)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Quota")})
	p.commitAll("two")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitServing(t, 90*time.Second, 2, greetingIs("Quota"))

	// Over quota: denied, two keep running.
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(5, "Quota")})
	p.commitAll("five")
	_, _ = p.client.Sync(context.Background(), false, 0)
	want := "policy quota: space dev would run 5 instances; its quota is 3"
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the commit is denied", func() error {
		st, err := p.client.Status(context.Background())
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(st.Sources[0].Errors, func(pr model.Problem) bool { return pr.Message == want }) {
			return fmt.Errorf("source errors %+v", st.Sources[0].Errors)
		}
		return nil
	})
	if !slices.ContainsFunc(eventsAll(t, p.client), func(e model.Event) bool {
		return e.Kind == "commit-denied" && strings.Contains(e.Message, "its quota is 3")
	}) {
		t.Error("no commit-denied event")
	}
	p.waitServing(t, 10*time.Second, 2, greetingIs("Quota"))
	out, err := p.cli("status")
	if err != nil || !strings.Contains(out, want) {
		t.Errorf("driftless status does not show the violation (err %v):\n%s", err, out)
	}

	// The platform team raises the quota: the same commit applies.
	writePolicy(t, pol, map[string]string{"quotas.yml": strings.Replace(quotas3, "instances: 3", "instances: 10", 1)})
	commitPolicy(t, pol, "raise the instance quota")
	p.waitServing(t, 90*time.Second, 5, greetingIs("Quota"))

	// A broken policy commit is refused; the quota of 10 stays enforced.
	writePolicy(t, pol, map[string]string{"broken.rego": "package driftless.broken\n\ndeny contains v if {\n  v := \n}\n"})
	commitPolicy(t, pol, "a syntax error")
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the policy commit is refused", func() error {
		st, err := p.client.Status(context.Background())
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(st.Policies.Errors, func(pr model.Problem) bool { return pr.File == "broken.rego" && pr.Line > 0 }) {
			return fmt.Errorf("policy errors %+v", st.Policies.Errors)
		}
		return nil
	})
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(12, "Quota")})
	p.commitAll("twelve")
	_, _ = p.client.Sync(context.Background(), false, 0)
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "twelve is denied by the quota in force", func() error {
		st, err := p.client.Status(context.Background())
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(st.Sources[0].Errors, func(pr model.Problem) bool {
			return strings.Contains(pr.Message, "would run 12 instances; its quota is 10")
		}) {
			return fmt.Errorf("source errors %+v", st.Sources[0].Errors)
		}
		return nil
	})
	p.waitServing(t, 10*time.Second, 5, greetingIs("Quota"))

	// Per-app enforcement: an app over the per-instance limit is held
	// back; the rest of the commit applies.
	if err := os.Remove(filepath.Join(pol, "broken.rego")); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, pol, map[string]string{"quotas.yml": "default:\n  memory: 2G\n  instances: 20\n  instance_memory: 256M\n  routes: 10\n  enforcement: per-app\n"})
	commitPolicy(t, pol, "per-app enforcement")
	p.addHello("apps/big")
	p.write(map[string]string{
		"apps/hello/manifest.yml": helloManifest(5, "PerApp"),
		"apps/big/manifest.yml":   strings.NewReplacer("name: hello", "name: big", "memory: 64M", "memory: 512M", helloHost, "big.apps.localhost").Replace(helloManifest(1, "Big")),
	})
	p.commitAll("hello changes, big is too big")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitServing(t, 90*time.Second, 5, greetingIs("PerApp"))
	st, err := p.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(st.Sources[0].Errors, func(pr model.Problem) bool {
		return pr.App == "big" && strings.Contains(pr.Message, "app big asks for 512 MB per instance") && pr.File == "apps/big/manifest.yml"
	}) {
		t.Errorf("big is not reported held back: %+v", st.Sources[0].Errors)
	}
	if _, err := p.client.App(context.Background(), "dev", "big"); err == nil {
		t.Error("big was deployed although it violates the per-instance limit")
	}
}

// TestOrgQuota: two spaces of one org, each from its own repository; the
// org's instance quota counts both, so a commit in the second space that
// would take the org over it is denied with the org's numbers.
func TestOrgQuota(t *testing.T) {
	pol := policyRepo(t, "default:\n  memory: 2G\n  instances: 20\n  instance_memory: 256M\norgs:\n  acme: {instances: 3}\n")
	other := filepath.Join(testenv.ShortTempDir(t, "dl-org-"), "team-b")
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.Git(t, other, "init", "-q", "-b", "main")
	testenv.Git(t, other, "commit", "-q", "--allow-empty", "-m", "empty")
	p := startDev(t, "--policies", pol, "--org", "acme", "--repo", "team-b="+other)
	p.addHello("apps/hello")
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Org")})
	p.commitAll("two in dev")
	_, _ = p.client.Sync(context.Background(), false, 0)
	p.waitServing(t, 90*time.Second, 2, greetingIs("Org"))

	addHelloTo(t, other, "b")
	writeRepo(t, other, map[string]string{"b/manifest.yml": strings.NewReplacer("name: hello", "name: b", helloHost, "b.apps.localhost").Replace(helloManifest(2, "B"))})
	testenv.Git(t, other, "add", "-A")
	testenv.Git(t, other, "commit", "-q", "-m", "two in team-b")
	_, _ = p.client.Sync(context.Background(), false, 0)
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "team-b's commit is denied by the org quota", func() error {
		st, err := p.client.Status(context.Background())
		if err != nil {
			return err
		}
		for _, s := range st.Sources {
			if s.Space == "team-b" && slices.ContainsFunc(s.Errors, func(pr model.Problem) bool {
				return strings.Contains(pr.Message, "org acme would run 4 instances over its spaces; its quota is 3")
			}) {
				return nil
			}
		}
		return fmt.Errorf("sources %+v", st.Sources)
	})
	p.waitServing(t, 10*time.Second, 2, greetingIs("Org"))
}
