package staging

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// goBuildpack builds Go modules: Cloud Foundry's go_buildpack. The compile
// step runs `go build` with CGO off, using the cell's Go toolchain mounted
// read-only and the app's module and build caches kept between stagings.
type goBuildpack struct{}

func (goBuildpack) Name() string      { return "go" }
func (goBuildpack) Aliases() []string { return []string{"go_buildpack"} }
func (goBuildpack) Stacks() []string  { return []string{StackTiny, StackBookworm} }

func (goBuildpack) Detect(dir string, _ Build) (bool, string) {
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return false, "no go.mod"
	}
	return true, ""
}

// GoRootInContainer is where the cell's Go toolchain appears in compile
// steps.
const GoRootInContainer = "/usr/local/go"

func (goBuildpack) Prepare(dir string, b Build, cell Cell, out func(string)) (Plan, error) {
	module, err := goModule(filepath.Join(dir, "go.mod"))
	if err != nil {
		return Plan{}, err
	}
	if cell.GoRoot == "" {
		return Plan{}, fmt.Errorf("go buildpack: this cell has no Go toolchain (agent --go-root)")
	}
	if _, err := os.Stat(filepath.Join(cell.GoRoot, "bin", "go")); err != nil {
		return Plan{}, fmt.Errorf("go buildpack: no Go toolchain at %s: %w", cell.GoRoot, err)
	}
	pkg, err := goMainPackage(dir, path.Base(module))
	if err != nil {
		return Plan{}, err
	}
	name := path.Base(module)
	out(fmt.Sprintf("       module %s, main package %s", module, pkg))
	proxy := cell.GoProxy
	if proxy == "" {
		proxy = "https://proxy.golang.org,direct"
	}
	script := strings.Join([]string{
		"set -e",
		"mkdir -p \"$HOME\" \"$GOCACHE\" \"$GOMODCACHE\"",
		"go version",
		"echo \"       build cache: $(find \"$GOCACHE\" -type f | wc -l) files, module cache: $(find \"$GOMODCACHE\" -type f | wc -l) files\"",
		"go build -trimpath -buildvcs=false -o bin/" + shellQuote(name) + " " + shellQuote(pkg),
		"echo \"       built bin/" + name + " ($(wc -c < bin/" + shellQuote(name) + ") bytes)\"",
	}, "\n")
	return Plan{
		Start:   "./bin/" + name,
		Compile: script,
		CompileEnv: []string{
			"HOME=/tmp/home", "PATH=" + GoRootInContainer + "/bin:/usr/local/bin:/usr/bin:/bin",
			"GOROOT=" + GoRootInContainer, "GOTOOLCHAIN=local", "CGO_ENABLED=0",
			"GOCACHE=" + CacheDir + "/go-build", "GOMODCACHE=" + CacheDir + "/go-mod",
			"GOPATH=" + CacheDir + "/go-path", "GOPROXY=" + proxy,
		},
		Tools: []Mount{{Source: cell.GoRoot, Destination: GoRootInContainer, ReadOnly: true}},
	}, nil
}

// goModule reads the module path of a go.mod.
func goModule(gomod string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", fmt.Errorf("go buildpack: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			m := strings.Trim(strings.TrimSpace(rest), `"`)
			if m != "" {
				return m, nil
			}
		}
	}
	return "", fmt.Errorf("go buildpack: go.mod declares no module")
}

// goMainPackage finds the package to build: the module root when it holds
// package main, else cmd/<name>, else the only folder under cmd/.
func goMainPackage(dir, name string) (string, error) {
	if isMainPackage(dir) {
		return ".", nil
	}
	if isMainPackage(filepath.Join(dir, "cmd", name)) {
		return "./cmd/" + name, nil
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "cmd"))
	var mains []string
	for _, e := range entries {
		if e.IsDir() && isMainPackage(filepath.Join(dir, "cmd", e.Name())) {
			mains = append(mains, "./cmd/"+e.Name())
		}
	}
	if len(mains) == 1 {
		return mains[0], nil
	}
	return "", fmt.Errorf("go buildpack: no main package at the module root or in cmd/%s (found %d under cmd/)", name, len(mains))
}

func isMainPackage(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if strings.HasPrefix(line, "package ") {
				if strings.TrimSpace(strings.TrimPrefix(line, "package ")) == "main" {
					return true
				}
				break
			}
		}
	}
	return false
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
