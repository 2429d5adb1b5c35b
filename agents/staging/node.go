package staging

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// nodeBuildpack installs a Node.js app's dependencies with npm: Cloud
// Foundry's nodejs_buildpack. It runs on the bookworm stack (nodejs, npm).
type nodeBuildpack struct{}

func (nodeBuildpack) Name() string      { return "node" }
func (nodeBuildpack) Aliases() []string { return []string{"nodejs_buildpack", "nodejs"} }
func (nodeBuildpack) Stacks() []string  { return []string{StackBookworm} }

func (nodeBuildpack) Detect(dir string, _ Build) (bool, string) {
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		return false, "no package.json"
	}
	return true, ""
}

// packageJSON is the part of package.json the buildpack reads.
type packageJSON struct {
	Main         string            `json:"main"`
	Scripts      map[string]string `json:"scripts"`
	Dependencies map[string]string `json:"dependencies"`
}

func (nodeBuildpack) Prepare(dir string, _ Build, cell Cell, out func(string)) (Plan, error) {
	data, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return Plan{}, fmt.Errorf("node buildpack: %w", err)
	}
	var pkg packageJSON
	if err := json.Unmarshal(data, &pkg); err != nil {
		return Plan{}, fmt.Errorf("node buildpack: package.json: %w", err)
	}
	start := ""
	switch {
	case pkg.Scripts["start"] != "":
		start = "npm start"
	case pkg.Main != "":
		start = "node " + shellQuote(pkg.Main)
	default:
		for _, f := range []string{"server.js", "index.js", "app.js"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				start = "node " + f
				break
			}
		}
	}
	if start == "" {
		return Plan{}, fmt.Errorf("node buildpack: no start script, main, server.js, index.js or app.js; add one or a Procfile")
	}
	out(fmt.Sprintf("       %d dependencies; start: %s", len(pkg.Dependencies), start))
	registry := cell.NpmRegistry
	if registry == "" {
		registry = "https://registry.npmjs.org/"
	}
	install := "npm install --omit=dev --no-audit --no-fund"
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err == nil {
		install = "npm ci --omit=dev --no-audit --no-fund"
	}
	script := strings.Join([]string{
		"set -e",
		"mkdir -p \"$HOME\"",
		"echo \"       node $(node --version), npm $(npm --version)\"",
		"echo \"       npm cache: $(find \"$npm_config_cache\" -type f 2>/dev/null | wc -l) files\"",
		install,
	}, "\n")
	return Plan{
		Start:   start,
		Compile: script,
		CompileEnv: []string{"HOME=/tmp/home", "npm_config_cache=" + CacheDir + "/npm",
			"npm_config_registry=" + registry, "npm_config_update_notifier=false", "NODE_ENV=production"},
	}, nil
}
