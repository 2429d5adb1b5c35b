// Package staging turns app source into a droplet: an OCI image made of a
// stack layer (a root file system) and the app layer a buildpack built.
// Stager.Stage is what an agent runs for a StageRequest. Buildpacks decide
// on the host what to do (detect, prepare the app folder, write the
// compile script); the compile step itself — the app's own build, with its
// dependencies — runs in a container on the stack (Runner).
package staging

import (
	"fmt"
	"slices"
	"strings"
)

// Buildpack turns an app folder into what runs.
type Buildpack interface {
	// Name is the buildpack's name as manifests write it.
	Name() string
	// Aliases are other names it answers to (Cloud Foundry's, e.g.
	// "go_buildpack").
	Aliases() []string
	// Stacks are the stacks it runs on, its default first.
	Stacks() []string
	// Detect reports whether the buildpack applies to the app in dir and,
	// when it does not, why.
	Detect(dir string, b Build) (ok bool, why string)
	// Prepare readies the app folder on the host (no app code runs) and
	// returns what to compile in a container and how to start the app.
	Prepare(dir string, b Build, cell Cell, out func(string)) (Plan, error)
}

// Build is what a buildpack knows of the app beyond its files.
type Build struct {
	// Command is the manifest's command, "" when it gives none.
	Command string
	Env     map[string]string
}

// Cell is what the cell offers buildpacks.
type Cell struct {
	// GoRoot is a Go toolchain on the cell, mounted read-only into Go
	// compile steps.
	GoRoot string
	// GoProxy is the Go module proxy compile steps use.
	GoProxy string
	// NpmRegistry is the npm registry compile steps use.
	NpmRegistry string
	// StaticServer is the driftless-static binary the static buildpack
	// puts into droplets.
	StaticServer string
}

// Plan is what a buildpack decided for one app.
type Plan struct {
	// Start is the start command (run with /bin/sh -c in the app folder).
	Start string
	// Compile is a shell script run in a container of the stack, as vcap,
	// in the app folder (AppDir, writable), with the pristine source at
	// SourceDir (read-only) and the app's build cache at CacheDir
	// (read-write). Empty means nothing to compile.
	Compile string
	// CompileEnv is the compile step's environment ("KEY=value").
	CompileEnv []string
	// Tools are cell folders the compile step needs, bound read-only.
	Tools []Mount
	// Layers are layers of the cell the droplet carries between the
	// stack's and the app's, by name (LayerJRE).
	Layers []string
}

// Mount binds a cell folder into a compile container.
type Mount struct {
	Source, Destination string
	ReadOnly            bool
}

// Where the compile step finds things.
const (
	// SourceDir holds the app's source as pushed, read-only.
	SourceDir = "/tmp/source"
	// CacheDir is the app's build cache, kept between stagings.
	CacheDir = "/tmp/cache"
)

// buildpacks are the known buildpacks in detection order.
// Java comes before static: a web application archive (refused by java)
// often has an index.html at its top.
var buildpacks = []Buildpack{goBuildpack{}, nodeBuildpack{}, pythonBuildpack{}, javaBuildpack{}, staticBuildpack{}, binaryBuildpack{}}

// urlStandIn is a buildpack that also answers to the URL of the Cloud
// Foundry buildpack it stands in for (staging warns that the built-in one
// is used).
type urlStandIn interface {
	AnswersToURL(url string) bool
}

// lookup finds a buildpack by name, alias or the URL it stands in for.
func lookup(name string) (Buildpack, error) {
	for _, bp := range buildpacks {
		if bp.Name() == name || slices.Contains(bp.Aliases(), name) {
			return bp, nil
		}
		if u, ok := bp.(urlStandIn); ok && u.AnswersToURL(name) {
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

// choose picks the buildpack for an app: the one named, or the first that
// detects. When none detects, the error says why for each.
func choose(names []string, dir string, b Build) (Buildpack, error) {
	if len(names) > 1 {
		return nil, fmt.Errorf("multiple buildpacks (%s) are not supported yet; name one", strings.Join(names, ", "))
	}
	if len(names) == 1 {
		return lookup(names[0])
	}
	var whys []string
	for _, bp := range buildpacks {
		ok, why := bp.Detect(dir, b)
		if ok {
			return bp, nil
		}
		whys = append(whys, bp.Name()+": "+why)
	}
	return nil, fmt.Errorf("no buildpack detected this app (%s); name one in the manifest", strings.Join(whys, "; "))
}
