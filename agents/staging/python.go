package staging

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// pythonBuildpack runs Python apps on the bookworm stack (python3):
// Cloud Foundry's python_buildpack, for apps that use the standard library
// or vendor their packages (cells reach no package index for Python).
type pythonBuildpack struct{}

func (pythonBuildpack) Name() string      { return "python" }
func (pythonBuildpack) Aliases() []string { return []string{"python_buildpack"} }
func (pythonBuildpack) Stacks() []string  { return []string{StackBookworm} }

func (pythonBuildpack) Detect(dir string, _ Build) (bool, string) {
	if _, err := os.Stat(filepath.Join(dir, "requirements.txt")); err == nil {
		return true, ""
	}
	if py, _ := filepath.Glob(filepath.Join(dir, "*.py")); len(py) > 0 {
		return true, ""
	}
	return false, "no requirements.txt or .py file"
}

// PythonPackagesDir is where vendored requirements are installed, inside
// the app folder; it is on PYTHONPATH when the app starts.
const PythonPackagesDir = ".python_packages"

func (pythonBuildpack) Prepare(dir string, b Build, _ Cell, out func(string)) (Plan, error) {
	start := ""
	for _, f := range []string{"app.py", "main.py", "server.py"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			start = "python3 " + f
			break
		}
	}
	reqs, err := requirements(filepath.Join(dir, "requirements.txt"))
	if err != nil {
		return Plan{}, err
	}
	plan := Plan{Start: start}
	if len(reqs) == 0 {
		out("       standard library only")
	} else {
		if st, err := os.Stat(filepath.Join(dir, "vendor")); err != nil || !st.IsDir() {
			return Plan{}, fmt.Errorf("python buildpack: requirements.txt lists %d package(s) but there is no vendor/ folder; "+
				"cells reach no Python package index: run `pip download -d vendor -r requirements.txt` and commit vendor/", len(reqs))
		}
		out(fmt.Sprintf("       %d requirement(s) from vendor/", len(reqs)))
		plan.Compile = strings.Join([]string{
			"set -e",
			"python3 --version",
			"python3 -m pip install --no-index --find-links vendor --target " + PythonPackagesDir + " -r requirements.txt",
		}, "\n")
		plan.CompileEnv = []string{"HOME=/tmp/home", "PIP_CACHE_DIR=" + CacheDir + "/pip", "PIP_DISABLE_PIP_VERSION_CHECK=1"}
		if plan.Start != "" {
			plan.Start = "PYTHONPATH=" + PythonPackagesDir + " " + plan.Start
		}
	}
	if plan.Start == "" && b.Command == "" {
		return Plan{}, fmt.Errorf("python buildpack: no app.py, main.py or server.py; add a command or a Procfile")
	}
	return plan, nil
}

// requirements lists the requirement lines of a requirements.txt (none when
// it is missing).
func requirements(path string) ([]string, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("python buildpack: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line != "" {
			out = append(out, line)
		}
	}
	return out, sc.Err()
}
