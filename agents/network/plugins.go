package network

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// plugins are the CNI plugins a network runs.
var plugins = []string{"bridge", "portmap", "host-local", "loopback"}

// findPlugins returns the path of each plugin in the first of dirs that
// has it.
func findPlugins(dirs []string) (map[string]string, error) {
	found := map[string]string{}
	for _, plugin := range plugins {
		for _, d := range dirs {
			path := filepath.Join(d, plugin)
			if st, err := os.Stat(path); err == nil && !st.IsDir() {
				found[plugin] = path
				break
			}
		}
		if found[plugin] == "" {
			return nil, fmt.Errorf("CNI plugins %v not found in %v (%s missing): "+
				"run `make setup` (apt-get install containernetworking-plugins)", plugins, dirs, plugin)
		}
	}
	return found, nil
}

// writeWrappers writes in dir, for each plugin, a script of that name
// that runs it with SIGINT ignored (inherited through exec; Go plugins
// keep an ignored SIGINT ignored). A plugin runs in the agent's process
// group, so the Ctrl-C that stops `driftless dev` in a terminal reached
// it too and killed the attach or detach it was in the middle of; the
// agent then stops in order and finishes them. A context's end still
// kills a plugin (SIGKILL).
func writeWrappers(dir string, found map[string]string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating the CNI plugin folder: %w", err)
	}
	for name, path := range found {
		quoted := "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
		script := "#!/bin/sh\ntrap '' INT\nexec " + quoted + " \"$@\"\n"
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, []byte(script), 0o700); err != nil {
			return fmt.Errorf("writing the CNI plugin wrapper %s: %w", name, err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("writing the CNI plugin wrapper %s: %w", name, err)
		}
	}
	return nil
}

// wrapPlugins writes the wrappers into dir and checks that they run (a
// data folder mounted noexec would stop them), returning the plugin
// folder to use.
func wrapPlugins(dir string, found map[string]string) ([]string, error) {
	if err := writeWrappers(dir, found); err != nil {
		return nil, err
	}
	probe := exec.Command(filepath.Join(dir, "loopback"))
	probe.Env = []string{"CNI_COMMAND=VERSION"}
	if out, err := probe.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("running the CNI plugin wrapper in %s: %w: %s", dir, err, out)
	}
	return []string{dir}, nil
}
