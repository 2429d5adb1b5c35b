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

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	dlplatform "github.com/driftless/driftless/platform"
)

// TestConsulACL: the Consul dev starts runs with ACLs and default deny.
// Without a token its KV is unreadable; the management token is kept 0600
// under the data folder; each of dev's roles got a token with its own
// policy only, which refuses what the role does not do; no token is in
// dev's log; and apps still deploy, serve through the router and take the
// next commit.
func TestConsulACL(t *testing.T) {
	p := startDev(t)
	before := p.deployHello(t, 2, "Hello")

	path := filepath.Join(p.dir, "data", dlplatform.ManagementTokenFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no management token kept: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}
	mgmt := p.managementToken()
	if mgmt == "" {
		t.Fatal("the management token file is empty")
	}

	// Anonymous: the desired state is refused, listings are empty.
	anon, err := catalog.NewClient(p.consul, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := anon.KV().Get(catalog.AppKey("dev", "hello"), nil); !testenv.ConsulDenied(err) {
		t.Errorf("anonymous read of %s: %v, want 403", catalog.AppKey("dev", "hello"), err)
	}
	if pairs, _, err := anon.KV().List(catalog.KVPrefix, nil); err != nil || len(pairs) != 0 {
		t.Errorf("anonymous listing of %s: %d keys (%v), want none", catalog.KVPrefix, len(pairs), err)
	}
	if s, _, err := anon.Catalog().Services(nil); err != nil || len(s) != 0 {
		t.Errorf("anonymous sees services %v (%v), want none", keys(s), err)
	}
	if err := catalog.NewWriter(anon, "intruder", "127.0.0.1").Apply(consul.TxnOps{catalog.CellOp("intruder", "127.0.0.1")}); !testenv.ConsulDenied(err) {
		t.Errorf("anonymous registration: %v, want 403", err)
	}
	// The management token sees it all.
	mc := p.mustConsulAPI(t)
	if pairs, _, err := mc.KV().List(catalog.KVPrefix, nil); err != nil || !slices.ContainsFunc(pairs, func(kv *consul.KVPair) bool {
		return kv.Key == catalog.AppKey("dev", "hello")
	}) {
		t.Errorf("the management token does not list %s (%v)", catalog.AppKey("dev", "hello"), err)
	}
	// Two nodes: the Consul agent's, which it registered with its own
	// token, and the cell's, which the cell writes its instances under.
	nodes, _, err := mc.Catalog().Nodes(nil)
	var names []string
	for _, n := range nodes {
		names = append(names, n.Node)
	}
	slices.Sort(names)
	if err != nil || len(names) != 2 || names[0] != catalog.CellNodePrefix+"dev-cell" || names[1] != "driftless-dev" {
		t.Errorf("nodes %v (%v), want driftless-dev registered by its agent and the cell's", names, err)
	}

	// Each role's token has its own policy, and only it.
	tokens, _, err := mc.ACL().TokenList(nil)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[catalog.Role]string{}
	for _, tok := range tokens {
		role, ok := strings.CutPrefix(tok.Description, "driftless dev: ")
		if !ok {
			continue
		}
		r := catalog.Role(role)
		secrets[r] = tok.SecretID
		if len(tok.Policies) != 1 || tok.Policies[0].Name != r.Policy().Name {
			t.Errorf("token of %s has policies %v, want only %s", r, tok.Policies, r.Policy().Name)
		}
	}
	if len(secrets) != len(catalog.Roles) {
		t.Fatalf("dev minted tokens for %v, want %v", secrets, catalog.Roles)
	}
	client := func(r catalog.Role) *consul.Client {
		c, err := catalog.NewClient(p.consul, secrets[r])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, _, err := client(catalog.RoleCell).KV().Get(catalog.AppKey("dev", "hello"), nil); !testenv.ConsulDenied(err) {
		t.Errorf("the cell's token reads the desired state: %v, want 403", err)
	}
	if _, err := client(catalog.RoleRouter).KV().Put(&consul.KVPair{Key: catalog.SleepingKey("dev", "hello"), Value: []byte("{}")}, nil); !testenv.ConsulDenied(err) {
		t.Errorf("the router's token writes KV: %v, want 403", err)
	}
	if err := catalog.NewWriter(client(catalog.RoleRouter), "intruder", "127.0.0.1").Apply(consul.TxnOps{catalog.CellOp("intruder", "127.0.0.1")}); !testenv.ConsulDenied(err) {
		t.Errorf("the router's token registers a service: %v, want 403", err)
	}

	// No token in what dev and its Consul print.
	logs := map[string]string{"dev's log": p.logPath, "consul's log": filepath.Join(p.dir, "data", "logs", "consul.log")}
	for what, path := range logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for name, secret := range map[string]string{"management": mgmt, "controller": secrets[catalog.RoleController],
			"cell": secrets[catalog.RoleCell], "router": secrets[catalog.RoleRouter]} {
			if strings.Contains(string(data), secret) {
				t.Errorf("%s shows the %s token", what, name)
			}
		}
	}

	// And the platform works on its tokens: the next commit deploys.
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(3, "Bonjour")})
	p.commitAll("hello, three times, in French")
	after := p.waitServing(t, 120*time.Second, 3, greetingIs("Bonjour"))
	if len(after) != 3 || len(before) != 2 {
		t.Fatalf("before %d instances, after %d", len(before), len(after))
	}
	// And no role was refused anything on the way, nor shown less than
	// it asked for (a path the checks above do not see would show here).
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "Permission denied") || strings.Contains(line, "ACL not found") || strings.Contains(line, "ACLs hide") {
			t.Errorf("dev was refused by Consul: %s", line)
		}
	}
}

// mintDevToken gives the Consul at addr (with ACLs, management token
// mgmt) its agent's token and a token for dev with secret devToken and
// the three roles' policies: what an operator does for a dev on a Consul
// of its own. Minting again (a Consul restarted empty) gives the same.
func mintDevToken(ctx context.Context, addr, mgmt, devToken string) error {
	mc, err := catalog.NewClient(addr, mgmt)
	if err != nil {
		return err
	}
	if err := catalog.EnsureAgentToken(ctx, mc); err != nil {
		return err
	}
	var policies []catalog.Policy
	for _, r := range catalog.Roles {
		policies = append(policies, r.Policy())
	}
	return catalog.EnsureTokens(ctx, mc, catalog.Grant{Secret: devToken, Description: "driftless dev (test)", Policies: policies})
}

// newSecret is a new Consul token secret.
func newSecret(t testing.TB) string {
	t.Helper()
	s, err := catalog.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestClusterConsulACLRestart: in the cluster (controller, cell and router
// as processes of their own, each with its role's token in
// CONSUL_HTTP_TOKEN) the Consul restarts empty and its tokens are minted
// again with the same secrets; the cell registers its instances again, the
// router serves them, and the controller leads again and applies the next
// commit, without restarting what runs.
func TestClusterConsulACLRestart(t *testing.T) {
	c := startCluster(t, []string{"a"}, 1)
	c.addHello("apps/hello")
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(2, "Hi")})
	c.commit("two instances")
	c.waitRunning(t, 120*time.Second, 2, nil)
	before := c.containers()

	c.restartConsul(time.Second)

	mc, err := catalog.NewClient(c.consul, c.consulMgmt)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, 300*time.Millisecond, "hello's instances registered and routed again", func() error {
		e, _, err := mc.Health().Service(catalog.ServiceName("dev", "hello"), catalog.AppTag, true, nil)
		if err != nil {
			return err
		}
		if len(e) != 2 {
			return fmt.Errorf("%d passing instances of hello in Consul", len(e))
		}
		if code, _, err := c.get(helloHost, "/"); err != nil || code != 200 {
			return fmt.Errorf("the router answers %d (%v)", code, err)
		}
		return nil
	})
	c.write(map[string]string{"apps/hello/manifest.yml": helloManifest(3, "Hi")})
	c.commit("three instances")
	c.waitRunning(t, 90*time.Second, 3, nil)
	after := c.containers()
	for _, id := range before {
		if !slices.Contains(after, id) {
			t.Fatalf("container %s of before the Consul restart is gone: %v → %v", id, before, after)
		}
	}
}
