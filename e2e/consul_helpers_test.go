package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
