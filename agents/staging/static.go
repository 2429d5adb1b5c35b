package staging

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// staticBuildpack serves a folder of files with driftless-static, a small
// static web server put into the droplet: Cloud Foundry's
// staticfile_buildpack. Nothing is compiled.
type staticBuildpack struct{}

func (staticBuildpack) Name() string      { return "static" }
func (staticBuildpack) Aliases() []string { return []string{"staticfile_buildpack", "staticfile"} }
func (staticBuildpack) Stacks() []string  { return []string{StackTiny, StackBookworm} }

func (staticBuildpack) Detect(dir string, _ Build) (bool, string) {
	for _, f := range []string{"Staticfile", "index.html"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true, ""
		}
	}
	return false, "no index.html or Staticfile"
}

// StaticServerPath is where the static server lands in the app folder.
const StaticServerPath = ".driftless/static-server"

func (staticBuildpack) Prepare(dir string, _ Build, cell Cell, out func(string)) (Plan, error) {
	root, err := staticRoot(dir)
	if err != nil {
		return Plan{}, err
	}
	if cell.StaticServer == "" {
		return Plan{}, fmt.Errorf("static buildpack: this cell has no driftless-static server (agent --static-server)")
	}
	src, err := os.Open(cell.StaticServer)
	if err != nil {
		return Plan{}, fmt.Errorf("static buildpack: %w", err)
	}
	defer src.Close()
	dst := filepath.Join(dir, StaticServerPath)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return Plan{}, fmt.Errorf("static buildpack: %w", err)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return Plan{}, fmt.Errorf("static buildpack: %w", err)
	}
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return Plan{}, fmt.Errorf("static buildpack: copying the server: %w", err)
	}
	if err := f.Close(); err != nil {
		return Plan{}, fmt.Errorf("static buildpack: %w", err)
	}
	out("       serving " + root + " with driftless-static (gzip, ETag, Cache-Control)")
	return Plan{Start: "./" + StaticServerPath + " -root " + shellQuote(root)}, nil
}

// staticRoot is the folder to serve: Staticfile's `root:`, else public/
// when it holds an index.html, else the app folder.
func staticRoot(dir string) (string, error) {
	if f, err := os.Open(filepath.Join(dir, "Staticfile")); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if ok && strings.TrimSpace(k) == "root" {
				root := filepath.Clean(strings.TrimSpace(v))
				if filepath.IsAbs(root) || root == ".." || strings.HasPrefix(root, "../") {
					return "", fmt.Errorf("static buildpack: Staticfile root %q is outside the app folder", root)
				}
				return root, nil
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "public", "index.html")); err == nil {
		return "public", nil
	}
	return ".", nil
}
