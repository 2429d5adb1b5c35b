package api

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/driftless/driftless/internal/files"
	"gopkg.in/yaml.v3"
)

// ClientConfig is the CLI's configuration, like a kubeconfig: where the
// API is and the token to call it with. `driftless dev` writes it; the
// flags --api/--token and DRIFTLESS_API/DRIFTLESS_TOKEN override it.
type ClientConfig struct {
	API   string `yaml:"api"`
	Token string `yaml:"token,omitempty"`
	// CA is a PEM file of the certificate authority the API's TLS
	// certificate is checked against ("" for the system's).
	CA string `yaml:"ca,omitempty"`
}

// ClientConfigPath is the CLI's configuration file:
// $XDG_CONFIG_HOME/driftless/config.yml, or ~/.config/driftless/config.yml.
func ClientConfigPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("finding the CLI's configuration (set XDG_CONFIG_HOME): %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "driftless", "config.yml"), nil
}

// LoadClientConfig reads the configuration at path; a missing file is an
// empty configuration.
func LoadClientConfig(path string) (ClientConfig, error) {
	var cfg ClientConfig
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, nil
	}
	if err != nil {
		return cfg, fmt.Errorf("reading the CLI's configuration: %w", err)
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return cfg, fmt.Errorf("reading the CLI's configuration %s: %w", path, err)
	}
	return cfg, nil
}

// WriteClientConfig writes cfg to path, readable by its owner only (it
// holds a token).
func WriteClientConfig(path string, cfg ClientConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the CLI's configuration folder: %w", err)
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding the CLI's configuration: %w", err)
	}
	return files.WriteAtomic(path, append([]byte("# written by driftless dev; --api/--token and DRIFTLESS_API/DRIFTLESS_TOKEN override it\n"), data...), 0o600)
}
