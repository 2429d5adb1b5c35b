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
	dlplatform "github.com/driftless/driftless/platform"
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
// command that uses them ("controller", "agent", "router").
func mintRoleTokens(t testing.TB, addr, mgmt string) map[string]string {
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
		out[cmd] = newSecret(t)
		grants = append(grants, catalog.Grant{Secret: out[cmd], Description: "driftless test cluster: " + cmd,
			Policies: []catalog.Policy{role.Policy()}})
	}
	if err := catalog.EnsureTokens(ctx, mc, grants...); err != nil {
		t.Fatal(err)
	}
	return out
}
