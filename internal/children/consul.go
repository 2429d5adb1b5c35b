package children

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ConsulOptions configures a Consul agent in dev mode (a single in-memory
// server that is its own leader).
type ConsulOptions struct {
	// Binary is the consul executable; empty means FindConsul.
	Binary string
	// HTTPAddr is where the HTTP API listens, "127.0.0.1:8500" by default.
	HTTPAddr string
	// Node names the Consul node; empty means consul's default (hostname).
	Node string
	// LogPath receives the agent's output.
	LogPath string
	// ACL, when set, turns Consul's ACLs on, denying what no token allows.
	ACL *ConsulACL
	// MaxConnsPerClient, when not 0, replaces Consul's limits of 200
	// concurrent HTTP connections and 100 RPC connections per client
	// address (scale tests: every client, Consul client agents among them,
	// shares loopback, and a router holds a blocking query per app).
	MaxConnsPerClient int
}

// ConsulACL is the ACL set-up of a dev agent: ACLs enabled, default_policy
// deny (a request without a token, or whose token does not allow it, is
// refused), down_policy extend-cache, and an initial management token.
// Consul in dev mode keeps nothing: an agent restarted with the same
// ConsulACL has the same management token and no other.
type ConsulACL struct {
	// ManagementToken is the initial management token (a UUID): the
	// operator's break-glass, and what mints every other token.
	ManagementToken string
	// ConfigDir receives the agent's ACL configuration (acl.json, 0600:
	// it holds the token).
	ConfigDir string
}

// writeConfig writes the ACL configuration file and returns its path.
func (a ConsulACL) writeConfig() (string, error) {
	if a.ManagementToken == "" || a.ConfigDir == "" {
		return "", errors.New("consul ACLs need a management token and a folder for their configuration")
	}
	cfg := map[string]any{"acl": map[string]any{
		"enabled": true, "default_policy": "deny", "down_policy": "extend-cache", "enable_token_persistence": false,
		"tokens": map[string]string{"initial_management": a.ManagementToken},
	}}
	data, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("encoding the consul ACL configuration: %w", err)
	}
	if err := os.MkdirAll(a.ConfigDir, 0o700); err != nil {
		return "", fmt.Errorf("creating the consul configuration folder: %w", err)
	}
	path := filepath.Join(a.ConfigDir, "acl.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", fmt.Errorf("writing the consul ACL configuration: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // an older file kept its mode
		return "", fmt.Errorf("restricting the consul ACL configuration: %w", err)
	}
	return path, nil
}

// FindConsul locates the consul executable: $DRIFTLESS_CONSUL, then
// consul beside the running executable (bin/driftless next to bin/consul),
// then bin/consul at the root of the driftless checkout containing the
// working directory, then $PATH.
func FindConsul() (string, error) {
	if p := os.Getenv("DRIFTLESS_CONSUL"); p != "" {
		return p, nil
	}
	var candidates []string
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "consul"))
	}
	if root, err := RepoRoot(); err == nil {
		candidates = append(candidates, filepath.Join(root, "bin", "consul"))
	}
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return c, nil
		}
	}
	if p, err := exec.LookPath("consul"); err == nil {
		return p, nil
	}
	return "", errors.New("consul not found: run `make setup` (builds the pinned Consul into ./bin/consul), " +
		"or set DRIFTLESS_CONSUL to a consul binary")
}

// RepoRoot finds the root of the driftless checkout that contains the
// working directory (the folder whose go.mod declares the driftless module).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the driftless checkout: %w", err)
	}
	for {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(f)
			first := ""
			if sc.Scan() {
				first = strings.TrimSpace(sc.Text())
			}
			f.Close()
			if first == "module github.com/driftless/driftless" {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the driftless checkout")
		}
		dir = parent
	}
}

// StartConsul starts `consul agent -dev` bound to loopback with every port
// chosen free (HTTP at opts.HTTPAddr), and waits until it has elected
// itself leader.
func StartConsul(ctx context.Context, opts ConsulOptions) (*Process, error) {
	bin := opts.Binary
	if bin == "" {
		var err error
		if bin, err = FindConsul(); err != nil {
			return nil, err
		}
	}
	httpAddr := opts.HTTPAddr
	if httpAddr == "" {
		httpAddr = "127.0.0.1:8500"
	}
	host, httpPort, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return nil, fmt.Errorf("consul HTTP address %q: %w", httpAddr, err)
	}
	args := []string{"agent", "-dev", "-bind", host, "-client", host, "-http-port", httpPort,
		"-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1", "-log-level", "info"}
	if opts.Node != "" {
		args = append(args, "-node", opts.Node)
	}
	for _, flag := range []string{"-server-port", "-serf-lan-port", "-serf-wan-port"} {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		args = append(args, flag, strconv.Itoa(port))
	}
	if opts.ACL != nil {
		path, err := opts.ACL.writeConfig()
		if err != nil {
			return nil, err
		}
		args = append(args, "-config-file", path)
	}
	if opts.MaxConnsPerClient > 0 {
		dir := "" // beside the log, or in the temporary folder
		if opts.LogPath != "" {
			dir = filepath.Dir(opts.LogPath)
		}
		f, err := os.CreateTemp(dir, "consul-limits-*.hcl")
		if err != nil {
			return nil, fmt.Errorf("consul limits: %w", err)
		}
		_, werr := fmt.Fprintf(f, "limits {\n  http_max_conns_per_client = %d\n  rpc_max_conns_per_client = %d\n}\n",
			opts.MaxConnsPerClient, opts.MaxConnsPerClient)
		if err := errors.Join(werr, f.Close()); err != nil {
			return nil, fmt.Errorf("consul limits: %w", err)
		}
		args = append(args, "-config-file", f.Name())
	}
	logPath := opts.LogPath
	if logPath == "" {
		logPath = filepath.Join(os.TempDir(), "driftless-consul.log")
	}
	p, err := start("consul", bin, args, logPath)
	if err != nil {
		return nil, err
	}
	url := "http://" + httpAddr + "/v1/status/leader"
	err = p.waitReady(ctx, 30*time.Second, func(ctx context.Context) error {
		if err := consulHasLeader(ctx, url); err != nil {
			return err
		}
		token := ""
		if opts.ACL != nil {
			// The leader makes the management token once it leads.
			token = opts.ACL.ManagementToken
			if err := consulTokenWorks(ctx, "http://"+httpAddr+"/v1/acl/token/self", token); err != nil {
				return err
			}
		}
		// The leader registers the agent's own node a moment after it
		// leads; a session made before that fails ("Missing node
		// registration").
		return consulNodeRegistered(ctx, "http://"+httpAddr, token)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ConsulAnswers reports whether a Consul agent with a leader answers at
// addr ("host:port").
func ConsulAnswers(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return consulHasLeader(ctx, "http://"+addr+"/v1/status/leader") == nil
}

// consulTokenWorks checks that Consul knows token (GET url, the token's
// own ACL entry, with it).
func consulTokenWorks(ctx context.Context, url, token string) error {
	if _, err := consulGet(ctx, url, token); err != nil {
		return fmt.Errorf("consul does not know the management token yet: %w", err)
	}
	return nil
}

// consulNodeRegistered checks that the agent at base ("http://host:port")
// has its own node in the catalog (asked with token, "" for none).
func consulNodeRegistered(ctx context.Context, base, token string) error {
	node, err := consulGet(ctx, base+"/v1/agent/self", token)
	if err != nil {
		return err
	}
	var self struct{ Config struct{ NodeName string } }
	if err := json.Unmarshal(node, &self); err != nil || self.Config.NodeName == "" {
		return fmt.Errorf("consul's agent/self has no node name: %v", err)
	}
	body, err := consulGet(ctx, base+"/v1/catalog/node/"+url.PathEscape(self.Config.NodeName), token)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(body)) == "null" {
		return fmt.Errorf("consul has not registered its node %s yet", self.Config.NodeName)
	}
	return nil
}

// consulGet reads u with token ("" for none): its body when the status
// is 200.
func consulGet(ctx context.Context, u, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("X-Consul-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("consul %s: status %d", u, resp.StatusCode)
	}
	return body, nil
}

func consulHasLeader(ctx context.Context, url string) error {
	body, err := consulGet(ctx, url, "")
	if err != nil {
		return fmt.Errorf("consul has no leader yet: %w", err)
	}
	if leader := strings.TrimSpace(string(body)); leader == `""` || leader == "" {
		return errors.New("consul has no leader yet")
	}
	return nil
}
