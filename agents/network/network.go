// Package network gives each instance on a cell its own network namespace,
// attached with CNI (go-cni running the standard bridge, host-local,
// portmap and loopback plugins) to a bridge on the cell, with one TCP host
// port mapped to the instance's port.
//
// The CNI configuration is held in memory, never read from /etc/cni.
// Namespaces are bind-mounted under /var/run/netns with a name made of the
// network name and the instance id, and every attachment is recorded under
// Config.StateDir, so a restarted agent finds them again with Lookup and
// Attachments. Addresses are allocated per bridge for the whole host
// (Config.IPAMDir), and host ports (Ports) are held and checked against
// the host's port mappings, so agents sharing a host never collide.
package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	cni "github.com/containerd/go-cni"
)

// Defaults for Config.
const (
	DefaultName   = "driftless"
	DefaultBridge = "driftless0"
	DefaultSubnet = "10.200.0.0/16"
)

// DefaultPluginDirs are where Debian's containernetworking-plugins and the
// upstream release archives put the CNI plugins.
var DefaultPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}

// ErrAttached is returned by Attach for an id that already has a complete
// attachment.
var ErrAttached = errors.New("already attached")

// Config configures a Network.
type Config struct {
	// Name is the CNI network name, DefaultName by default. It prefixes the
	// namespace names, so agents sharing a host should use different names.
	Name string
	// Bridge is the Linux bridge the instances' veths join, DefaultBridge
	// by default (at most 15 characters).
	Bridge string
	// Subnet is the IPv4 range instance addresses come from, DefaultSubnet
	// by default. The bridge takes its first address as the gateway.
	Subnet string
	// PluginDirs are searched for the CNI plugin executables,
	// DefaultPluginDirs by default.
	PluginDirs []string
	// StateDir keeps the attachment records. It is required and must be
	// private to this Network.
	StateDir string
	// IPAMDir keeps the address allocations, one folder per bridge,
	// DefaultIPAMDir by default. Agents sharing a bridge (and network
	// name) share its allocations, so they never hand out one address
	// twice.
	IPAMDir string
	// HostIP is the address host ports are mapped on, e.g. "127.0.0.1";
	// empty maps them on every address of the host.
	HostIP string
	// HostServicePorts are the TCP ports on the bridge's gateway address
	// that instances may open connections to (dev's PostgreSQL); every
	// other new connection from an instance to the host is dropped once
	// EnsureWalls has run.
	HostServicePorts []int
}

// Network attaches instances to one CNI network. Its methods are safe for
// concurrent use; attachments and detachments run one at a time.
type Network struct {
	cfg Config
	cni cni.CNI
	mu  sync.Mutex
}

// Attachment is an instance's place on the network.
type Attachment struct {
	// ID is the instance id the attachment was made for.
	ID string `json:"id"`
	// NetNSPath is the bind-mounted network namespace to run the instance in.
	NetNSPath string `json:"netns_path"`
	// IP is the instance's IPv4 address on the bridge; empty in a record
	// left by an attach that did not finish.
	IP string `json:"ip"`
	// HostPort is the TCP port on Config.HostIP mapped to ContainerPort.
	HostPort int `json:"host_port"`
	// ContainerPort is the instance's TCP port HostPort maps to.
	ContainerPort int `json:"container_port"`
}

var (
	idPattern     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]{0,127}$`)
	bridgePattern = regexp.MustCompile(`^[a-zA-Z0-9_.\-]{1,15}$`)
)

// New checks cfg, fills in defaults and loads the CNI configuration. Of
// the host it changes only the address allocations (it frees those of
// namespaces that are gone): the bridge appears with the first Attach.
func New(cfg Config) (*Network, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Bridge == "" {
		cfg.Bridge = DefaultBridge
	}
	if cfg.Subnet == "" {
		cfg.Subnet = DefaultSubnet
	}
	if len(cfg.PluginDirs) == 0 {
		cfg.PluginDirs = DefaultPluginDirs
	}
	if cfg.IPAMDir == "" {
		cfg.IPAMDir = DefaultIPAMDir
	}
	if !idPattern.MatchString(cfg.Name) {
		return nil, fmt.Errorf("network config: invalid name %q", cfg.Name)
	}
	if !bridgePattern.MatchString(cfg.Bridge) {
		return nil, fmt.Errorf("network config: invalid bridge name %q (at most 15 letters, digits, '.', '_', '-')", cfg.Bridge)
	}
	if ip, _, err := net.ParseCIDR(cfg.Subnet); err != nil || ip.To4() == nil {
		return nil, fmt.Errorf("network config: subnet %q is not an IPv4 CIDR", cfg.Subnet)
	}
	if err := subnetFree(cfg.Subnet, cfg.Bridge); err != nil {
		return nil, err
	}
	if cfg.HostIP != "" && net.ParseIP(cfg.HostIP) == nil {
		return nil, fmt.Errorf("network config: host IP %q is not an IP address", cfg.HostIP)
	}
	for _, p := range cfg.HostServicePorts {
		if !validPort(p) {
			return nil, fmt.Errorf("network config: host service port %d out of range", p)
		}
	}
	if cfg.StateDir == "" {
		return nil, errors.New("network config: StateDir is required")
	}
	abs, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("network config: state dir: %w", err)
	}
	cfg.StateDir = abs
	if cfg.IPAMDir, err = filepath.Abs(cfg.IPAMDir); err != nil {
		return nil, fmt.Errorf("network config: IPAM dir: %w", err)
	}
	for _, d := range []string{cfg.StateDir, ipamDir(cfg), recordDir(cfg)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating network state folder: %w", err)
		}
	}
	if err := migrateIPAM(cfg); err != nil {
		return nil, fmt.Errorf("network %s: %w", cfg.Name, err)
	}
	found, err := findPlugins(cfg.PluginDirs)
	if err != nil {
		return nil, fmt.Errorf("network config: %w", err)
	}
	pluginDirs, err := wrapPlugins(filepath.Join(cfg.StateDir, "cni-plugins"), found)
	if err != nil {
		slog.Warn("CNI plugins run as they are: a Ctrl-C in the agent's terminal may interrupt them", "err", err)
		pluginDirs = cfg.PluginDirs
	}
	confList, err := confList(cfg)
	if err != nil {
		return nil, err
	}
	// The plugin dirs must come first: each network captures the CNI
	// executor when it is added. The bridge network comes before loopback
	// so that its interface is eth0.
	c, err := cni.New(cni.WithPluginDir(pluginDirs), cni.WithInterfacePrefix("eth"),
		cni.WithConfListBytes(confList), cni.WithLoNetwork)
	if err != nil {
		return nil, fmt.Errorf("loading the CNI configuration of network %s: %w", cfg.Name, err)
	}
	n := &Network{cfg: cfg, cni: c}
	if err := n.releaseOrphanAllocations(); err != nil {
		return nil, fmt.Errorf("network %s: %w", cfg.Name, err)
	}
	return n, nil
}

// Config returns the network's configuration with defaults filled in.
func (n *Network) Config() Config { return n.cfg }

func recordDir(cfg Config) string { return filepath.Join(cfg.StateDir, "attachments") }

// subnetFree fails if an interface other than bridge has an address in
// subnet, or in a network that contains it: the host routes that range
// elsewhere (another platform's bridge, a VPN, the LAN), so the
// instances' traffic would never reach them.
func subnetFree(subnet, bridge string) error {
	_, want, err := net.ParseCIDR(subnet)
	if err != nil {
		return fmt.Errorf("network config: subnet %q: %w", subnet, err)
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return fmt.Errorf("network config: listing the host's interfaces: %w", err)
	}
	for _, ifc := range ifaces {
		if ifc.Name == bridge {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return fmt.Errorf("network config: addresses of %s: %w", ifc.Name, err)
		}
		for _, a := range addrs {
			have, ok := a.(*net.IPNet)
			if !ok || have.IP.To4() == nil {
				continue
			}
			if have.Contains(want.IP) || want.Contains(have.IP) {
				return fmt.Errorf("network config: subnet %s overlaps %s of interface %s: "+
					"the host routes those addresses there; choose another subnet", subnet, have, ifc.Name)
			}
		}
	}
	return nil
}

// confList is the CNI network configuration list: a bridge with the
// gateway address and masquerading of outgoing traffic, host-local
// addresses, and port mappings.
func confList(cfg Config) ([]byte, error) {
	type obj = map[string]any
	conf := obj{
		"cniVersion": "1.0.0",
		"name":       cfg.Name,
		"plugins": []obj{
			{
				"type":        "bridge",
				"bridge":      cfg.Bridge,
				"isGateway":   true,
				"ipMasq":      true,
				"hairpinMode": true,
				"ipam": obj{
					"type":    "host-local",
					"ranges":  [][]obj{{{"subnet": cfg.Subnet}}},
					"routes":  []obj{{"dst": "0.0.0.0/0"}},
					"dataDir": ipamDir(cfg),
				},
			},
			{
				"type":         "portmap",
				"capabilities": obj{"portMappings": true},
				"snat":         true,
			},
		},
	}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("encoding the CNI configuration: %w", err)
	}
	return b, nil
}

// NetNSPath is where the namespace of instance id is mounted.
func (n *Network) NetNSPath(id string) string {
	return filepath.Join(NetNSDir, n.cfg.Name+"-"+id)
}

func (n *Network) portMap(hostPort, containerPort int) cni.NamespaceOpts {
	return cni.WithCapabilityPortMap([]cni.PortMapping{{
		HostPort:      int32(hostPort),
		ContainerPort: int32(containerPort),
		Protocol:      "tcp",
		HostIP:        n.cfg.HostIP,
	}})
}

// Attach creates a network namespace for instance id, connects it to the
// bridge (and brings its loopback up), and maps HostIP:hostPort to the
// instance's containerPort over TCP; with both ports 0 nothing is mapped
// (outbound traffic only, for staging). On failure nothing is left behind.
func (n *Network) Attach(ctx context.Context, id string, hostPort, containerPort int) (*Attachment, error) {
	if !idPattern.MatchString(id) {
		return nil, fmt.Errorf("attaching %q: invalid id", id)
	}
	noPorts := hostPort == 0 && containerPort == 0 // outbound only (staging)
	if !noPorts && (!validPort(hostPort) || !validPort(containerPort)) {
		return nil, fmt.Errorf("attaching %s: ports %d→%d out of range", id, hostPort, containerPort)
	}
	n.mu.Lock()
	defer n.mu.Unlock()

	path := n.NetNSPath(id)
	old, err := n.readRecord(id)
	if err != nil {
		return nil, fmt.Errorf("attaching %s: %w", id, err)
	}
	if old != nil && old.IP != "" && isNetNS(path) {
		return nil, fmt.Errorf("attaching %s: %w (host port %d)", id, ErrAttached, old.HostPort)
	}
	if _, statErr := os.Lstat(path); old != nil || statErr == nil {
		// Left by an attach that did not finish: clear it first.
		slog.Warn("clearing an unfinished network attachment", "id", id, "netns", path)
		hp, cp := hostPort, containerPort
		if old != nil {
			hp, cp = old.HostPort, old.ContainerPort
		}
		if err := n.detach(ctx, id, hp, cp); err != nil {
			return nil, fmt.Errorf("attaching %s: clearing an unfinished attachment: %w", id, err)
		}
	}

	if err := createNetNS(path); err != nil {
		return nil, fmt.Errorf("attaching %s: %w", id, err)
	}
	att := &Attachment{ID: id, NetNSPath: path, HostPort: hostPort, ContainerPort: containerPort}
	// Record first, so that an agent dying during the CNI ADD leaves
	// something Attachments reports and Detach can clear.
	if err := n.writeRecord(att); err != nil {
		_ = removeNetNS(path)
		return nil, fmt.Errorf("attaching %s: %w", id, err)
	}
	var opts []cni.NamespaceOpts
	if !noPorts {
		opts = append(opts, n.portMap(hostPort, containerPort))
	}
	res, err := n.cni.SetupSerially(ctx, id, path, opts...)
	if err == nil {
		att.IP, err = resultIP(res)
	}
	if err == nil {
		err = n.writeRecord(att)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := n.detach(cctx, id, hostPort, containerPort); derr != nil {
			slog.Error("clearing a failed network attachment", "id", id, "err", derr)
		}
		return nil, fmt.Errorf("attaching %s to network %s (CNI ADD): %w", id, n.cfg.Name, err)
	}
	slog.Debug("network attached", "id", id, "ip", att.IP, "host_port", hostPort, "netns", path)
	out := *att
	return &out, nil
}

func validPort(p int) bool { return p > 0 && p <= 65535 }

// resultIP is the IPv4 address CNI gave the instance's eth0.
func resultIP(res *cni.Result) (string, error) {
	if ifc, ok := res.Interfaces["eth0"]; ok {
		for _, c := range ifc.IPConfigs {
			if ip4 := c.IP.To4(); ip4 != nil {
				return ip4.String(), nil
			}
		}
	}
	return "", errors.New("CNI result has no IPv4 address for eth0")
}

// Detach removes the port mapping, the veth and the address of instance id
// (CNI DEL) and then its network namespace and record. hostPort and
// containerPort must be those given to Attach (0, 0 means: as recorded).
// Detaching an id that is not attached, or no longer, is not an error.
func (n *Network) Detach(ctx context.Context, id string, hostPort, containerPort int) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("detaching %q: invalid id", id)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.detach(ctx, id, hostPort, containerPort); err != nil {
		return fmt.Errorf("detaching %s from network %s: %w", id, n.cfg.Name, err)
	}
	return nil
}

// detach is Detach with n.mu held.
func (n *Network) detach(ctx context.Context, id string, hostPort, containerPort int) error {
	rec, err := n.readRecord(id)
	if err != nil {
		return err
	}
	if rec != nil && hostPort == 0 {
		hostPort, containerPort = rec.HostPort, rec.ContainerPort
	}
	var opts []cni.NamespaceOpts
	if validPort(hostPort) && validPort(containerPort) {
		// portmap's DEL does nothing without the mappings.
		opts = append(opts, n.portMap(hostPort, containerPort))
	}
	path := n.NetNSPath(id)
	nsPath := path
	if !isNetNS(path) {
		// Plugins clean up what they can without a namespace. The
		// bridge's masquerade rule is found through the addresses inside
		// the namespace, which is why a namespace is only ever removed
		// after a successful DEL.
		nsPath = ""
	}
	if err := n.cni.Remove(ctx, id, nsPath, opts...); err != nil {
		return fmt.Errorf("CNI DEL: %w", err)
	}
	if nsPath == "" && rec != nil && rec.IP != "" {
		if err := n.sweepMasquerade(ctx, id, rec.IP); err != nil {
			return fmt.Errorf("removing the masquerade rule: %w", err)
		}
	}
	if err := removeNetNS(path); err != nil {
		return err
	}
	if err := os.Remove(n.recordPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing attachment record: %w", err)
	}
	return nil
}

// Lookup finds the complete attachment of instance id, e.g. to adopt a
// running instance after the agent restarted. It reports false when id
// has no record, its namespace is gone, or its attach never finished.
func (n *Network) Lookup(id string) (*Attachment, bool) {
	if !idPattern.MatchString(id) {
		return nil, false
	}
	rec, err := n.readRecord(id)
	if err != nil || rec == nil || rec.IP == "" || !isNetNS(rec.NetNSPath) {
		return nil, false
	}
	return rec, true
}

// Attachments lists every attachment recorded for this network, including
// unfinished ones (empty IP), so that an agent can detach those it has no
// instance for.
func (n *Network) Attachments() ([]*Attachment, error) {
	entries, err := os.ReadDir(recordDir(n.cfg))
	if err != nil {
		return nil, fmt.Errorf("listing network attachments: %w", err)
	}
	var out []*Attachment
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || filepath.Ext(name) != ".json" {
			continue
		}
		rec, err := n.readRecord(name[:len(name)-len(".json")])
		if err != nil {
			return nil, fmt.Errorf("listing network attachments: %w", err)
		}
		if rec != nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

func (n *Network) recordPath(id string) string {
	return filepath.Join(recordDir(n.cfg), id+".json")
}

// readRecord returns nil, nil when id has no record.
func (n *Network) readRecord(id string) (*Attachment, error) {
	data, err := os.ReadFile(n.recordPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading attachment record: %w", err)
	}
	var a Attachment
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("decoding attachment record %s: %w", n.recordPath(id), err)
	}
	return &a, nil
}

func (n *Network) writeRecord(a *Attachment) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encoding attachment record: %w", err)
	}
	tmp := n.recordPath(a.ID) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing attachment record: %w", err)
	}
	if err := os.Rename(tmp, n.recordPath(a.ID)); err != nil {
		return fmt.Errorf("writing attachment record: %w", err)
	}
	return nil
}
