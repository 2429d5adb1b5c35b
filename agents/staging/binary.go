package staging

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// binaryBuildpack runs an executable that is already in the app folder:
// Cloud Foundry's binary_buildpack. It builds nothing; it checks that the
// command's program is there and executable.
type binaryBuildpack struct{}

func (binaryBuildpack) Name() string      { return "binary" }
func (binaryBuildpack) Aliases() []string { return []string{"binary_buildpack"} }
func (binaryBuildpack) Stacks() []string  { return []string{StackTiny, StackBookworm} }

// Detect applies when a command names a program inside the app folder.
func (binaryBuildpack) Detect(dir string, b Build) (bool, string) {
	prog, ok := localProgram(b.Command)
	if !ok {
		return false, "the command names no program inside the app folder"
	}
	st, err := os.Stat(filepath.Join(dir, prog))
	if err != nil || !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return false, fmt.Sprintf("%s is not an executable file", prog)
	}
	return true, ""
}

func (bp binaryBuildpack) Prepare(dir string, b Build, _ Cell, out func(string)) (Plan, error) {
	start, err := bp.check(dir, b, out)
	return Plan{Start: start}, err
}

func (binaryBuildpack) check(dir string, b Build, out func(string)) (string, error) {
	if strings.TrimSpace(b.Command) == "" {
		return "", errors.New("binary buildpack needs a command in the manifest (e.g. command: ./server)")
	}
	if prog, ok := localProgram(b.Command); ok {
		st, err := os.Stat(filepath.Join(dir, prog))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("binary buildpack: the command's program %q is not in the app folder", prog)
		case err != nil:
			return "", fmt.Errorf("binary buildpack: checking %q: %w", prog, err)
		case !st.Mode().IsRegular():
			return "", fmt.Errorf("binary buildpack: the command's program %q is not a regular file", prog)
		case st.Mode()&0o111 == 0:
			return "", fmt.Errorf("binary buildpack: the command's program %q is not executable (git update-index --chmod=+x %s)", prog, prog)
		}
		out(fmt.Sprintf("       program %s (%d bytes)", prog, st.Size()))
	}
	return b.Command, nil
}

// localProgram returns the program of a command when it is a path inside
// the app folder ("./server", "bin/run"), not a program found on PATH.
func localProgram(command string) (string, bool) {
	fields := strings.Fields(command)
	if len(fields) == 0 {
		return "", false
	}
	prog := fields[0]
	if !strings.Contains(prog, "/") || strings.HasPrefix(prog, "/") {
		return "", false
	}
	clean := path.Clean(prog)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", false
	}
	return clean, true
}
