package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
	dlplatform "github.com/driftless/driftless/platform"
	"github.com/driftless/driftless/tokens"
)

// consulToken is the management token of the platform's Consul: the one
// the test gave it (p.consulToken, a Consul the test started), else the
// one dev keeps under its data folder for the Consul it started.
func (p *platform) managementToken() string {
	if p.consulToken != "" {
		return p.consulToken
	}
	data, err := os.ReadFile(filepath.Join(p.dir, "data", dlplatform.ManagementTokenFile))
	if err != nil {
		return "" // a Consul without ACLs
	}
	return strings.TrimSpace(string(data))
}

// consulAPI is a client of the platform's Consul with its management
// token: the tests' own reads and writes see and may do everything.
func (p *platform) consulAPI() (*consul.Client, error) {
	return catalog.NewClient(p.consul, p.managementToken())
}

// mustConsulAPI is consulAPI, failing the test on error.
func (p *platform) mustConsulAPI(t testing.TB) *consul.Client {
	t.Helper()
	c, err := p.consulAPI()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// roleOfCommand is the Consul role of each driftless command the cluster
// harness starts.
var roleOfCommand = map[string]catalog.Role{
	"controller": catalog.RoleController, "agent": catalog.RoleCell, "router": catalog.RoleRouter,
}

// mintRoleTokens gives the Consul at addr (ACLs on, management token
// mgmt) its agent's token and a token per role, and returns them by the
// command that uses them ("controller", "agent", "router"): those of
// secrets when given (a Consul that keeps nothing, started again), else
// new ones.
func mintRoleTokens(t testing.TB, addr, mgmt string, secrets map[string]string) map[string]string {
	t.Helper()
	mc, err := catalog.NewClient(addr, mgmt)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := catalog.EnsureAgentToken(ctx, mc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var grants []catalog.Grant
	for cmd, role := range roleOfCommand {
		if out[cmd] = secrets[cmd]; out[cmd] == "" {
			out[cmd] = newSecret(t)
		}
		grants = append(grants, catalog.Grant{Secret: out[cmd], Description: "driftless test cluster: " + cmd,
			Policies: []catalog.Policy{role.Policy()}})
	}
	if err := catalog.EnsureTokens(ctx, mc, grants...); err != nil {
		t.Fatal(err)
	}
	return out
}

// restartConsul kills the cluster's Consul and, after down, starts it
// again empty (a dev agent keeps nothing) with the same management token,
// then mints each role's token again with the secret the processes hold:
// what a production Consul, which keeps its tokens in raft, does not need.
func (c *cluster) restartConsul(down time.Duration) {
	c.t.Helper()
	c.consulProc.Kill()
	time.Sleep(down)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cp, err := children.StartConsul(ctx, children.ConsulOptions{HTTPAddr: c.consul, Node: "dl-cluster",
		LogPath: filepath.Join(c.dir, "consul.log"), ACL: &children.ConsulACL{ManagementToken: c.consulMgmt, ConfigDir: c.dir}})
	if err != nil {
		c.t.Fatal(err)
	}
	c.consulProc = cp
	mintRoleTokens(c.t, c.consul, c.consulMgmt, c.consulTokens)
	c.restoreAPITokens()
}

// restoreAPITokens puts the cluster's API tokens (the admin's, the
// cells') back into a Consul that started empty, as an operator restores
// them from where they keep them: the platform does not make them again.
func (c *cluster) restoreAPITokens() {
	c.t.Helper()
	cc, err := catalog.NewClient(c.consul, c.consulMgmt)
	if err != nil {
		c.t.Fatal(err)
	}
	store := tokens.NewStore(cc)
	ctx := context.Background()
	if err := store.Restore(ctx, c.admin, tokens.Request{Name: "admin", Role: tokens.RoleAdmin}); err != nil {
		c.t.Fatal(err)
	}
	for name := range c.cells {
		data, err := os.ReadFile(filepath.Join(c.dir, "cell-"+name+".token"))
		if err != nil {
			continue // never started
		}
		if err := store.Restore(ctx, strings.TrimSpace(string(data)), tokens.Request{Name: "cell-" + name, Role: tokens.RoleCell}); err != nil {
			c.t.Fatal(err)
		}
	}
}
