// Package staging turns app source into a droplet: an OCI image made of a
// stack layer (a tiny root file system) and the app layer a buildpack
// built. Stager.Stage is what an agent runs for a StageRequest.
package staging

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Buildpack builds an app folder in place into what runs. Detect says
// whether it applies to an app that names no buildpack.
type Buildpack interface {
	// Name is the buildpack's name as manifests write it.
	Name() string
	// Aliases are other names it answers to (Cloud Foundry's, e.g.
	// "binary_buildpack").
	Aliases() []string
	// Detect reports whether the buildpack applies to the app in dir.
	Detect(dir string, b Build) bool
	// Build prepares dir and returns the start command.
	Build(ctx context.Context, dir string, b Build, out func(string)) (string, error)
}

// Build is what a buildpack knows of the app beyond its files.
type Build struct {
	// Command is the manifest's command, "" when it gives none.
	Command string
	Env     map[string]string
}

// buildpacks are the known buildpacks in detection order.
var buildpacks = []Buildpack{binaryBuildpack{}}

// lookup finds a buildpack by name or alias.
func lookup(name string) (Buildpack, error) {
	for _, bp := range buildpacks {
		if bp.Name() == name || slices.Contains(bp.Aliases(), name) {
			return bp, nil
		}
	}
	return nil, fmt.Errorf("unknown buildpack %q (known: %s)", name, strings.Join(Known(), ", "))
}

// Known lists the names of the known buildpacks.
func Known() []string {
	var out []string
	for _, bp := range buildpacks {
		out = append(out, bp.Name())
	}
	return out
}

// choose picks the buildpack for an app: the last one named (earlier ones
// would be supply buildpacks, which driftless does not run yet), or the
// first that detects.
func choose(names []string, dir string, b Build) (Buildpack, error) {
	if len(names) > 1 {
		return nil, fmt.Errorf("multiple buildpacks (%s) are not supported yet; name one", strings.Join(names, ", "))
	}
	if len(names) == 1 {
		return lookup(names[0])
	}
	for _, bp := range buildpacks {
		if bp.Detect(dir, b) {
			return bp, nil
		}
	}
	return nil, fmt.Errorf("no buildpack detected this app; name one in the manifest (known: %s)", strings.Join(Known(), ", "))
}
