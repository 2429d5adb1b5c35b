package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd/pkg/netns"
	cnins "github.com/containernetworking/plugins/pkg/ns"

	"github.com/driftless/driftless/internal/testenv"
)

// testNetwork makes a Network on its own bridge and subnet and removes the
// bridge when the test ends.
func testNetwork(t *testing.T, name, bridge, subnet string) *Network {
	t.Helper()
	testenv.RequireRoot(t)
	n, err := New(Config{Name: name, Bridge: bridge, Subnet: subnet, StateDir: t.TempDir(), IPAMDir: t.TempDir(), HostIP: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", bridge).Run() })
	return n
}

func randomID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "test-" + hex.EncodeToString(b)
}

// attach attaches id and detaches it when the test ends, whatever happens.
func attach(t *testing.T, n *Network, id string, hostPort, containerPort int) *Attachment {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := n.Attach(ctx, id, hostPort, containerPort)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = n.Detach(ctx, id, hostPort, containerPort)
	})
	return a
}

// serveInNetNS answers HTTP GETs with body on port inside the network
// namespace at path.
func serveInNetNS(t *testing.T, path string, port int, body string) {
	t.Helper()
	var l net.Listener
	err := netns.LoadNetNS(path).Do(func(cnins.NetNS) error {
		var err error
		l, err = net.Listen("tcp", ":"+strconv.Itoa(port))
		return err
	})
	if err != nil {
		t.Fatalf("listening inside %s: %v", path, err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, body) }),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// get fetches url, failing the test if it does not answer body within
// the timeout.
func get(t *testing.T, url, body string) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	testenv.Eventually(t, 15*time.Second, 200*time.Millisecond, "GET "+url, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if string(b) != body {
			return fmt.Errorf("status %d, body %q, want %q", resp.StatusCode, b, body)
		}
		return nil
	})
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// traces lists the lines of the host's iptables rules, network namespaces
// and links that mention the attachment.
func traces(t *testing.T, n *Network, a *Attachment) []string {
	t.Helper()
	var found []string
	marks := []string{a.ID, a.IP + "/", a.IP + ":", "--dport " + strconv.Itoa(a.HostPort) + " "}
	for _, table := range []string{"nat", "filter", "mangle"} {
		for _, line := range strings.Split(run(t, "iptables", "-w", "-t", table, "-S"), "\n") {
			for _, m := range marks {
				if strings.Contains(line, m) {
					found = append(found, "iptables -t "+table+": "+line)
					break
				}
			}
		}
	}
	nsName := strings.TrimPrefix(n.NetNSPath(a.ID), NetNSDir+"/")
	for _, line := range strings.Split(run(t, "ip", "netns", "list"), "\n") {
		if strings.Fields(line + " x")[0] == nsName {
			found = append(found, "ip netns: "+line)
		}
	}
	if links := strings.TrimSpace(run(t, "ip", "-o", "link", "show", "master", n.Config().Bridge)); links != "" {
		found = append(found, "ip link (ports of the bridge): "+links)
	}
	return found
}

func TestAttachServeDetach(t *testing.T) {
	n := testNetwork(t, "dltest-net", "dltnet0", "10.231.0.0/24")
	ports := NewPorts("127.0.0.1", 42100, 42199)
	hostPort, err := ports.Allocate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id := randomID(t)
	a := attach(t, n, id, hostPort, 8080)

	if a.ID != id || a.HostPort != hostPort || a.ContainerPort != 8080 || a.NetNSPath != NetNSDir+"/dltest-net-"+id {
		t.Fatalf("attachment = %+v", a)
	}
	_, subnet, _ := net.ParseCIDR("10.231.0.0/24")
	if ip := net.ParseIP(a.IP); ip == nil || !subnet.Contains(ip) {
		t.Fatalf("attachment IP %q not in %s", a.IP, subnet)
	}
	if !strings.Contains(run(t, "ip", "netns", "list"), "dltest-net-"+id) {
		t.Fatalf("ip netns list does not show dltest-net-%s", id)
	}
	// Loopback is up inside, eth0 has the address.
	inside := run(t, "ip", "netns", "exec", "dltest-net-"+id, "ip", "-o", "addr")
	if !strings.Contains(inside, "inet 127.0.0.1/8") || !strings.Contains(inside, "inet "+a.IP+"/24") {
		t.Fatalf("addresses inside the namespace:\n%s", inside)
	}

	serveInNetNS(t, a.NetNSPath, 8080, "hello "+id)
	get(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort), "hello "+id)
	get(t, fmt.Sprintf("http://%s:8080/", a.IP), "hello "+id)
	if len(traces(t, n, a)) == 0 {
		t.Fatal("no iptables rule, netns or veth found for a live attachment: the clean-up check below would prove nothing")
	}
	// The port is held (the mapping answered above, not the hold), and
	// once the hold is gone, as when the agent is killed, its mapping
	// still keeps any allocator from handing the port out again.
	if l, err := net.Listen("tcp", fmt.Sprintf(":%d", hostPort)); err == nil {
		l.Close()
		t.Fatalf("host port %d is not held", hostPort)
	}
	ports.Release(hostPort)
	if got, err := NewPorts("", hostPort, hostPort).Allocate(context.Background()); !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("another allocator: Allocate() = %d, %v; want ErrNoFreePort (port %d is mapped)", got, err, hostPort)
	}

	if _, err := n.Attach(context.Background(), id, hostPort, 8080); err == nil {
		t.Fatal("a second Attach of the same id succeeded")
	}

	// A restarted agent finds the attachment.
	n2, err := New(n.Config())
	if err != nil {
		t.Fatal(err)
	}
	got, ok := n2.Lookup(id)
	if !ok || *got != *a {
		t.Fatalf("Lookup after restart = %+v, %v; want %+v", got, ok, a)
	}
	all, err := n2.Attachments()
	if err != nil || len(all) != 1 || *all[0] != *a {
		t.Fatalf("Attachments = %v, %v", all, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n2.Detach(ctx, id, hostPort, 8080); err != nil {
		t.Fatal(err)
	}
	if left := traces(t, n, a); len(left) > 0 {
		t.Fatalf("left behind after Detach:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(a.NetNSPath); !os.IsNotExist(err) {
		t.Fatalf("netns file still there: %v", err)
	}
	if _, ok := n2.Lookup(id); ok {
		t.Fatal("Lookup finds a detached attachment")
	}
	if all, _ := n2.Attachments(); len(all) != 0 {
		t.Fatalf("Attachments after Detach = %v", all)
	}
	// Idempotent.
	if err := n2.Detach(ctx, id, hostPort, 8080); err != nil {
		t.Fatalf("second Detach: %v", err)
	}
	if err := n2.Detach(ctx, randomID(t), 0, 0); err != nil {
		t.Fatalf("Detach of an id never attached: %v", err)
	}

	// The address and port can be used again.
	a2 := attach(t, n, randomID(t), hostPort, 8080)
	serveInNetNS(t, a2.NetNSPath, 8080, "again")
	get(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort), "again")
}

func TestDetachWithoutNamespace(t *testing.T) {
	// The namespace vanished behind the agent's back (ip netns delete):
	// Detach still removes the port mapping, masquerade rule and record.
	n := testNetwork(t, "dltest-gone", "dltgone0", "10.235.0.0/24")
	id := randomID(t)
	a := attach(t, n, id, 42290, 8080)
	if err := removeNetNS(a.NetNSPath); err != nil {
		t.Fatal(err)
	}
	if _, ok := n.Lookup(id); ok {
		t.Fatal("Lookup finds an attachment whose namespace is gone")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Detach(ctx, id, 0, 0); err != nil {
		t.Fatal(err)
	}
	if left := traces(t, n, a); len(left) > 0 {
		t.Fatalf("left behind after Detach:\n%s", strings.Join(left, "\n"))
	}
	if all, _ := n.Attachments(); len(all) != 0 {
		t.Fatalf("Attachments after Detach = %v", all)
	}
}

func TestTwoNetworksSideBySide(t *testing.T) {
	na := testNetwork(t, "dltest-a", "dlta0", "10.232.0.0/24")
	nb := testNetwork(t, "dltest-b", "dltb0", "10.233.0.0/24")
	ida, idb := randomID(t), randomID(t)
	aa := attach(t, na, ida, 42201, 8080)
	ab := attach(t, nb, idb, 42202, 8080)
	for _, c := range []struct {
		a      *Attachment
		subnet string
	}{{aa, "10.232.0.0/24"}, {ab, "10.233.0.0/24"}} {
		_, subnet, _ := net.ParseCIDR(c.subnet)
		if !subnet.Contains(net.ParseIP(c.a.IP)) {
			t.Errorf("%s got %s, not in %s", c.a.ID, c.a.IP, c.subnet)
		}
		serveInNetNS(t, c.a.NetNSPath, 8080, "hello "+c.a.ID)
		get(t, fmt.Sprintf("http://127.0.0.1:%d/", c.a.HostPort), "hello "+c.a.ID)
	}
	for _, br := range []string{"dlta0", "dltb0"} {
		run(t, "ip", "link", "show", br)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := na.Detach(ctx, ida, 42201, 8080); err != nil {
		t.Fatal(err)
	}
	// b is untouched by a's detach.
	get(t, "http://127.0.0.1:42202/", "hello "+idb)
	if err := nb.Detach(ctx, idb, 42202, 8080); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		n *Network
		a *Attachment
	}{{na, aa}, {nb, ab}} {
		if left := traces(t, c.n, c.a); len(left) > 0 {
			t.Errorf("left behind by %s:\n%s", c.a.ID, strings.Join(left, "\n"))
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no state dir", Config{}},
		{"long bridge", Config{StateDir: dir, Bridge: "a-very-long-bridge-name"}},
		{"bad subnet", Config{StateDir: dir, Subnet: "10.0.0.0"}},
		{"ipv6 subnet", Config{StateDir: dir, Subnet: "fd00::/64"}},
		{"bad host ip", Config{StateDir: dir, HostIP: "localhost"}},
		{"bad name", Config{StateDir: dir, Name: "a/b"}},
		{"no plugins", Config{StateDir: dir, PluginDirs: []string{dir}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.cfg); err == nil {
				t.Fatalf("New(%+v) succeeded", c.cfg)
			}
		})
	}
	n, err := New(Config{StateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Name: DefaultName, Bridge: DefaultBridge, Subnet: DefaultSubnet, PluginDirs: DefaultPluginDirs, StateDir: dir}
	got := n.Config()
	if got.Name != want.Name || got.Bridge != want.Bridge || got.Subnet != want.Subnet ||
		strings.Join(got.PluginDirs, ",") != strings.Join(want.PluginDirs, ",") || got.StateDir != want.StateDir {
		t.Fatalf("defaults = %+v, want %+v", got, want)
	}
}

// A subnet the host already has on another interface (another platform's
// bridge, the LAN) is refused: the instances would be unreachable.
func TestNewRefusesRoutedSubnet(t *testing.T) {
	testenv.RequireRoot(t)
	const other = "dltovl0"
	_ = exec.Command("ip", "link", "delete", other).Run()
	run(t, "ip", "link", "add", other, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", other).Run() })
	run(t, "ip", "addr", "add", "10.236.5.1/24", "dev", other)
	dir := t.TempDir()
	cases := []struct {
		subnet, bridge string
		refused        bool
	}{
		{"10.236.0.0/16", "dltnew0", true},   // contains the other's network
		{"10.236.5.128/25", "dltnew0", true}, // inside it
		{"10.237.0.0/16", "dltnew0", false},
		{"10.236.0.0/16", other, false}, // the bridge's own address
	}
	for _, c := range cases {
		_, err := New(Config{StateDir: dir, IPAMDir: dir, Subnet: c.subnet, Bridge: c.bridge})
		if c.refused && (err == nil || !strings.Contains(err.Error(), other)) {
			t.Errorf("New(subnet %s, bridge %s) = %v; want an error naming %s", c.subnet, c.bridge, err, other)
		}
		if !c.refused && err != nil {
			t.Errorf("New(subnet %s, bridge %s): %v", c.subnet, c.bridge, err)
		}
	}
}

// Two agents with their own state folders on one bridge (two dev
// platforms on a host) share the bridge's address allocations; an agent
// starting frees the allocations of namespaces that are gone and takes
// over those an older agent kept in its state folder.
func TestSharedAddresses(t *testing.T) {
	testenv.RequireRoot(t)
	ipam := t.TempDir()
	cfg := func() Config {
		return Config{Name: "dltest-s", Bridge: "dlts0", Subnet: "10.238.0.0/24", StateDir: t.TempDir(), IPAMDir: ipam, HostIP: "127.0.0.1"}
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", "dlts0").Run() })
	na, err := New(cfg())
	if err != nil {
		t.Fatal(err)
	}
	nb, err := New(cfg())
	if err != nil {
		t.Fatal(err)
	}
	aa := attach(t, na, randomID(t), 42301, 8080)
	ab := attach(t, nb, randomID(t), 42302, 8080)
	if aa.IP == ab.IP {
		t.Fatalf("two agents on one bridge both gave out %s", aa.IP)
	}

	// An allocation whose namespace is gone is freed by the next agent
	// to start; the live ones stay.
	dir := allocationsDir(na.Config())
	gone := filepath.Join(dir, "10.238.0.50")
	if err := os.WriteFile(gone, []byte("test-gone\r\neth0"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An older agent's own allocation, of an instance still running.
	older := cfg()
	oldID := randomID(t)
	oldDir := filepath.Join(older.StateDir, "ipam", older.Name)
	if err := os.MkdirAll(oldDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(oldDir, "10.238.0.60"), []byte(oldID+"\r\neth0"), 0o600); err != nil {
		t.Fatal(err)
	}
	oldNS := filepath.Join(NetNSDir, older.Name+"-"+oldID)
	if err := createNetNS(oldNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeNetNS(oldNS) })

	if _, err := New(older); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the allocation of a namespace that is gone is still there (%v)", err)
	}
	for _, ip := range []string{aa.IP, ab.IP, "10.238.0.60"} {
		if _, err := os.Stat(filepath.Join(dir, ip)); err != nil {
			t.Errorf("allocation of %s: %v", ip, err)
		}
	}
	if _, err := os.Stat(filepath.Join(older.StateDir, "ipam")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the older agent's allocations folder is still there (%v)", err)
	}
}
