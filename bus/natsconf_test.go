package bus

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/crypto/bcrypt"
)

// TestServerConfigParses renders a cluster node's configuration and reads
// it back with nats-server's own parser: every user has its role's
// permissions and a bcrypt hash of its password, the routes carry their
// credential and JetStream is on.
func TestServerConfigParses(t *testing.T) {
	users := []Credential{
		{User: "ctl", Password: "p-ctl", Identity: Identity{Role: RoleController}},
		{User: "cell-1", Password: "p-cell", Identity: Identity{Role: RoleCell, Cell: "cell-1"}},
		{User: "router-1", Password: "p-rtr", Identity: Identity{Role: RoleRouter}},
	}
	dir := t.TempDir()
	cfg := ServerConfig{Name: "n1", Listen: "127.0.0.1:4222", Monitor: "127.0.0.1:8222", Cluster: "dl",
		ClusterListen: "127.0.0.1:6222", Routes: []string{"127.0.0.1:6222", "127.0.0.2:6222"},
		RouteUser: "route", RoutePassword: "r$p@ss", StoreDir: filepath.Join(dir, "js"), MaxFileStore: 1 << 30, Users: users}
	data, err := cfg.Render()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the configuration: %v\n%s", err, data)
	}
	if opts.ServerName != "n1" || !opts.JetStream || opts.StoreDir != cfg.StoreDir || opts.JetStreamMaxStore != 1<<30 {
		t.Errorf("server %q, jetstream %v in %q (max %d)", opts.ServerName, opts.JetStream, opts.StoreDir, opts.JetStreamMaxStore)
	}
	if opts.Cluster.Name != "dl" || opts.Cluster.Username != "route" || opts.Cluster.Password != "r$p@ss" || len(opts.Routes) != 2 {
		t.Errorf("cluster %+v, %d routes", opts.Cluster, len(opts.Routes))
	}
	for _, r := range opts.Routes {
		if pw, _ := r.User.Password(); r.User.Username() != "route" || pw != "r$p@ss" {
			t.Errorf("route %s does not carry the route credential", r.Redacted())
		}
	}
	if len(opts.Users) != len(users) {
		t.Fatalf("%d users, want %d", len(opts.Users), len(users))
	}
	for _, want := range users {
		i := slices.IndexFunc(opts.Users, func(u *server.User) bool { return u.Username == want.User })
		if i < 0 {
			t.Fatalf("no user %s", want.User)
		}
		got := opts.Users[i]
		if bcrypt.CompareHashAndPassword([]byte(got.Password), []byte(want.Password)) != nil {
			t.Errorf("%s: the password is not a bcrypt hash of the credential's", want.User)
		}
		p, _ := Permissions(want.Identity)
		if got.Permissions == nil || !slices.Equal(got.Permissions.Publish.Allow, p.Publish) || !slices.Equal(got.Permissions.Subscribe.Allow, p.Subscribe) {
			t.Errorf("%s: permissions %+v, want %+v", want.User, got.Permissions, p)
			continue
		}
		if (got.Permissions.Response != nil) != p.Responses ||
			p.Responses && (got.Permissions.Response.MaxMsgs != 1 || got.Permissions.Response.Expires != ResponseTTL) {
			t.Errorf("%s: responses %+v, want %v", want.User, got.Permissions.Response, p.Responses)
		}
	}
}

// TestServerConfigRefuses: a node without routes' credential, or with a
// user of no role, is not rendered.
func TestServerConfigRefuses(t *testing.T) {
	base := ServerConfig{Name: "n1", Listen: "127.0.0.1:4222", Cluster: "dl", ClusterListen: "127.0.0.1:6222",
		RouteUser: "route", RoutePassword: "x", StoreDir: "/tmp/js"}
	noRoute := base
	noRoute.RoutePassword = ""
	badUser := base
	badUser.Users = []Credential{{User: "u", Password: "p"}}
	for name, cfg := range map[string]ServerConfig{"no route password": noRoute, "user without a role": badUser} {
		if _, err := cfg.Render(); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
}
