// Package testenv starts the real engines driftless runs on — Consul,
// containerd, NATS and git — for integration and end-to-end tests, each on
// loopback with its own ports and folders, stopped when the test ends.
//
// A missing engine fails the test with what to install; it never skips.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd"
	consul "github.com/hashicorp/consul/api"
	"github.com/nats-io/nats.go"
	"golang.org/x/crypto/bcrypt"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/children"
)

// RequireRoot fails the test unless it runs as root, which containerd,
// network namespaces and iptables need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (containerd, network namespaces, iptables): run `make test` as root")
	}
}

// ShortTempDir makes a temporary folder with a short path (unix socket
// paths are limited to 108 bytes) removed when the test ends.
func ShortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// Consul is a Consul dev agent started for one test.
type Consul struct {
	// Addr is the HTTP API address, "127.0.0.1:port".
	Addr string
	// Client talks to it with ManagementToken.
	Client *consul.Client
	Proc   *children.Process
	// ManagementToken is the initial management token when the agent
	// runs with ACLs (StartConsulACL), else "".
	ManagementToken string
}

// StartConsul starts a Consul dev agent on free loopback ports.
func StartConsul(t testing.TB) *Consul {
	t.Helper()
	return startConsul(t, nil)
}

// StartConsulACL starts a Consul dev agent on free loopback ports with
// ACLs on and default deny (children.ConsulACL), and a random management
// token.
func StartConsulACL(t testing.TB) *Consul {
	t.Helper()
	token, err := catalog.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return startConsul(t, &children.ConsulACL{ManagementToken: token, ConfigDir: t.TempDir()})
}

// StartConsulScale starts a Consul dev agent as StartConsul does, taking
// up to 10,000 concurrent HTTP connections from one address (scale tests:
// hollow cells, controller and router all on loopback, the router with a
// blocking query per app).
func StartConsulScale(t testing.TB) *Consul {
	t.Helper()
	return startConsulWith(t, children.ConsulOptions{MaxConnsPerClient: 10000})
}

func startConsul(t testing.TB, acl *children.ConsulACL) *Consul {
	t.Helper()
	return startConsulWith(t, children.ConsulOptions{ACL: acl})
}

func startConsulWith(t testing.TB, opts children.ConsulOptions) *Consul {
	t.Helper()
	port, err := children.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	opts.HTTPAddr, opts.LogPath = addr, filepath.Join(dir, "consul.log")
	p, err := children.StartConsul(ctx, opts)
	if err != nil {
		t.Fatalf("starting consul: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Stop(10 * time.Second)
		dumpLogOnFailure(t, p)
	})
	cs := &Consul{Addr: addr, Proc: p}
	if opts.ACL != nil {
		cs.ManagementToken = opts.ACL.ManagementToken
	}
	if cs.Client, err = catalog.NewClient(addr, cs.ManagementToken); err != nil {
		t.Fatal(err)
	}
	return cs
}

// NATS is a NATS server (the real nats-server, embedded) started for one
// test. It refuses anonymous clients, as driftless's servers do: Connect
// gives a connection of one role, with that role's permissions.
type NATS struct {
	URL    string
	Server *bus.Embedded
	// Password is the password of every user: "controller", "router" and
	// "cell.<id>" for any cell id.
	Password string
	// StoreDir holds JetStream's files.
	StoreDir string
}

// StartNATS starts a NATS server, with JetStream, on a free loopback port.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{Password: rand.Text(), StoreDir: t.TempDir()}
	n.start(t, "127.0.0.1:0")
	t.Cleanup(func() { n.Server.Shutdown() })
	return n
}

func (n *NATS) start(t testing.TB, listen string) {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Listen: listen, Auth: n.auth, StoreDir: n.StoreDir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("starting NATS: %v", err)
	}
	n.URL, n.Server = srv.URL(), srv
}

// Restart stops the server and starts it again on the same port with
// the same JetStream store; clients reconnect.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	n.Server.Shutdown()
	u, err := url.Parse(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	n.start(t, u.Host)
}

// auth knows NATSUser's users, all with the server's Password.
func (n *NATS) auth(user, password string) (bus.Identity, error) {
	var id bus.Identity
	if cell, ok := strings.CutPrefix(user, "cell."); ok {
		id = bus.Identity{Role: bus.RoleCell, Cell: cell}
	} else {
		id = bus.Identity{Role: bus.Role(user)}
	}
	if id.Validate() != nil {
		return bus.Identity{}, bus.ErrUnknownUser
	}
	if subtle.ConstantTimeCompare([]byte(password), []byte(n.Password)) != 1 {
		return bus.Identity{}, bus.ErrBadPassword
	}
	return id, nil
}

// NATSUser is the user of the test server for id.
func NATSUser(id bus.Identity) string {
	if id.Role == bus.RoleCell {
		return "cell." + id.Cell
	}
	return string(id.Role)
}

// Connect connects to the server as id (with id's inbox prefix and
// permissions); the connection closes with the test.
func (n *NATS) Connect(t testing.TB, id bus.Identity) *nats.Conn {
	t.Helper()
	nc, err := bus.Connect(bus.ClientConfig{URL: n.URL, Name: "test-" + NATSUser(id), User: NATSUser(id), Password: n.Password, Identity: id},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("connecting to NATS as %s: %v", id, err)
	}
	t.Cleanup(nc.Close)
	if err := nc.Flush(); err != nil {
		t.Fatalf("connecting to NATS as %s: %v", id, err)
	}
	return nc
}

// Containerd is a containerd daemon private to one test.
type Containerd struct {
	Address string
	Client  *containerd.Client
	Proc    *children.Process
	// Dir is the daemon's folder (root, state, config, log).
	Dir string
}

// StartContainerd starts containerd with its own root, state and socket.
// It needs root.
func StartContainerd(t testing.TB) *Containerd {
	t.Helper()
	RequireRoot(t)
	dir := ShortTempDir(t, "dl-ctrd-")
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	p, addr, err := children.StartContainerd(ctx, children.ContainerdOptions{Dir: dir})
	if err != nil {
		t.Fatalf("starting containerd: %v", err)
	}
	c, err := containerd.New(addr)
	if err != nil {
		_ = p.Stop(10 * time.Second)
		t.Fatalf("connecting to containerd: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		_ = p.Stop(15 * time.Second)
		dumpLogOnFailure(t, p)
	})
	return &Containerd{Address: addr, Client: c, Proc: p, Dir: dir}
}

// Git runs git in dir with a fixed identity and returns its trimmed output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=driftless test", "GIT_AUTHOR_EMAIL=test@driftless.invalid",
		"GIT_COMMITTER_NAME=driftless test", "GIT_COMMITTER_EMAIL=test@driftless.invalid",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return strings.TrimSpace(out.String())
}

// Eventually calls cond every interval until it returns nil, failing the
// test with cond's last error once timeout has passed.
func Eventually(t testing.TB, timeout, interval time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(interval)
	}
}

func dumpLogOnFailure(t testing.TB, p *children.Process) {
	if !t.Failed() {
		return
	}
	data, err := os.ReadFile(p.LogPath())
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	t.Logf("last lines of %s log (%s):\n%s", p.Name(), p.LogPath(), strings.Join(lines, "\n"))
}

// Postgres is a PostgreSQL server started for one test.
type Postgres struct {
	// DSN is the superuser's postgres:// URL (it holds the password).
	DSN string
	// Addr is where the server listens, "127.0.0.1:port".
	Addr string
	Proc *children.Process
	// Dir holds the cluster, its socket folder and log.
	Dir string
}

// StartPostgres starts PostgreSQL with a new cluster on a free loopback
// port (as the Debian postgres user when the test runs as root).
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	port, err := children.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := ShortTempDir(t, "dl-pg-")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, dsn, err := children.StartPostgres(ctx, children.PostgresOptions{Dir: dir, Listen: addr})
	if err != nil {
		t.Fatalf("starting postgres: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Stop(15 * time.Second)
		dumpLogOnFailure(t, p)
	})
	return &Postgres{DSN: dsn, Addr: addr, Proc: p, Dir: dir}
}

// Registry is a Docker registry (docker-registry) started for one test,
// with basic authentication.
type Registry struct {
	// Addr is where it listens, "127.0.0.1:port": images are
	// Addr + "/repo:tag".
	Addr string
	Proc *children.Process
	Dir  string
}

// StartRegistry starts docker-registry on a free loopback port, requiring
// basic authentication as one of users (name → password; bcrypt-hashed
// into its htpasswd file).
func StartRegistry(t testing.TB, users map[string]string) *Registry {
	t.Helper()
	port, err := children.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := ShortTempDir(t, "dl-reg-")
	var htpasswd strings.Builder
	for _, name := range slices.Sorted(maps.Keys(users)) {
		hash, err := bcrypt.GenerateFromPassword([]byte(users[name]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&htpasswd, "%s:%s\n", name, hash)
	}
	htpath := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpath, []byte(htpasswd.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	p, err := children.StartRegistry(ctx, children.RegistryOptions{Dir: dir, Listen: addr, Htpasswd: htpath})
	if err != nil {
		t.Fatalf("starting the docker registry: %v", err)
	}
	t.Cleanup(func() {
		_ = p.Stop(10 * time.Second)
		dumpLogOnFailure(t, p)
	})
	return &Registry{Addr: addr, Proc: p, Dir: dir}
}

// ConsulDenied reports whether err is Consul's refusal: 403, or a
// transaction rolled back for want of permission.
func ConsulDenied(err error) bool {
	var se consul.StatusError
	return errors.As(err, &se) && se.Code == 403 || err != nil && (strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "Permission denied"))
}
