package children

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// RegistryOptions configures a Docker registry (Debian's docker-registry,
// the CNCF distribution registry) private to one test: its storage and
// config under Dir, listening on Listen, with basic authentication from an
// htpasswd file (bcrypt) when Htpasswd is set.
type RegistryOptions struct {
	// Dir holds the config, the storage and the log. Required.
	Dir string
	// Listen is "127.0.0.1:port". Required.
	Listen string
	// Htpasswd is an htpasswd file of bcrypt hashes; empty means no
	// authentication.
	Htpasswd string
}

// registryConfig is docker-registry's configuration: filesystem storage,
// plain HTTP on loopback, htpasswd authentication when given.
const registryConfig = `version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
http:
  addr: %q
  secret: driftless-test-registry
%s`

// StartRegistry starts docker-registry and waits until its API answers.
func StartRegistry(ctx context.Context, opts RegistryOptions) (*Process, error) {
	if opts.Dir == "" || opts.Listen == "" {
		return nil, errors.New("registry options: Dir and Listen are required")
	}
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, errors.New("docker-registry not found: run `make setup` (apt-get install docker-registry)")
	}
	auth := ""
	if opts.Htpasswd != "" {
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: driftless-test\n    path: %q\n", opts.Htpasswd)
	}
	conf := filepath.Join(opts.Dir, "config.yml")
	data := fmt.Sprintf(registryConfig, filepath.Join(opts.Dir, "storage"), opts.Listen, auth)
	if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
		return nil, fmt.Errorf("writing the registry's config: %w", err)
	}
	p, err := start("docker-registry", bin, []string{"serve", conf}, filepath.Join(opts.Dir, "registry.log"))
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	err = p.waitReady(ctx, 30*time.Second, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+opts.Listen+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}
