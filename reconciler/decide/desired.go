// Package decide holds the controller's decisions as pure functions, the
// way Nomad's scheduler returns a plan that its server applies: the desired
// state a commit asks for (Desired), the input the policies judge
// (PolicyInput, shared with `driftless policy eval`), which apps per-app
// enforcement holds back (HoldBack), what a commit changes in the stored
// desired state (Apply) and how a failed rollout is undone (Rollback).
// Nothing here talks to git, Consul, NATS or the cells: reconciler applies
// what these functions return, and they are unit-tested on their own.
package decide

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/driftless/driftless/manifests"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/archive"
)

// Tree is a commit's content as the desired-state builder needs it: the
// files, and the git tree hash of any folder. reconciler/source.Snapshot
// implements it.
type Tree interface {
	FS() fs.FS
	TreeHash(path string, exclude ...string) (string, error)
}

// SourceExcludes are the files at the top of an app's source folder that
// are not part of its source: the manifest and its vars (a preview's
// vars-preview.yml too). Editing them (scaling, labels) does not restage
// or restart the app.
var SourceExcludes = append(append([]string{}, manifests.ManifestNames...), manifests.VarsName, manifests.PreviewVarsName)

// Proposal is the desired state one commit of one source asks for.
type Proposal struct {
	Apps     []model.App
	Releases []model.Release
	// Services are the service instances its services.yml files declare
	// for the space (services.go).
	Services []model.ServiceInstance
	Errors   []model.Problem
	Warnings []model.Problem
	// RoutePos holds, per app name, where each of its routes is written
	// (RouteClaims reports at them).
	RoutePos map[string]map[string]model.Position
}

// Options are the platform settings that shape desired state.
type Options struct {
	Source string
	Space  string
	Commit string
	// Domain is the default domain for apps without routes.
	Domain string
	// Preview reads vars-preview.yml instead of vars.yml beside a manifest
	// when it is there (a pull request's preview; see ForPreview).
	Preview bool
}

// Desired reads every manifest of tree and returns the apps and
// releases it declares. It never returns partial state: when Errors is not
// empty the commit must not be applied.
func Desired(tree Tree, opts Options) Proposal {
	set := manifests.LoadFSWith(tree.FS(), ".", manifests.LoadOptions{Preview: opts.Preview})
	var p Proposal
	for _, d := range set.Diagnostics {
		if d.Severity == model.Error {
			p.Errors = append(p.Errors, d)
		} else {
			p.Warnings = append(p.Warnings, d)
		}
	}
	if len(p.Errors) > 0 {
		return p
	}
	ingress := Ingress(set.NetworkPolicies)
	for _, m := range set.Manifests {
		for _, app := range m.Apps {
			src := path.Join(path.Dir(m.File), app.Path)
			tree, msg := sourceTree(tree, app.Name, src)
			if app.Docker != nil {
				src, tree, msg = "", "", "" // an image has no source (image.go)
			}
			if msg != "" {
				pos := app.Pos
				if fp, ok := app.Fields["path"]; ok {
					pos = fp
				}
				p.Errors = append(p.Errors, model.Problem{Position: model.Position{File: pos.File, Line: pos.Line, Col: pos.Col}, App: app.Name, Message: msg})
				continue
			}
			rel := newRelease(app, opts, src, tree, ingress[app.Name])
			p.Releases = append(p.Releases, rel)
			if p.RoutePos == nil {
				p.RoutePos = map[string]map[string]model.Position{}
			}
			p.RoutePos[app.Name] = routePositions(app, opts.Space, opts.Domain)
			p.Apps = append(p.Apps, model.App{
				Space: opts.Space, Name: app.Name, Source: opts.Source, Commit: opts.Commit,
				File: app.Pos.File, Line: app.Pos.Line, Instances: app.Instances,
				ReleaseID: rel.ID, Routes: rel.Run.Routes, Labels: app.Labels, Processes: processCounts(app),
			})
		}
	}
	for _, d := range set.Services {
		p.Services = append(p.Services, model.ServiceInstance{Space: opts.Space, Source: opts.Source, Commit: opts.Commit, Decl: d})
	}
	if len(p.Errors) > 0 {
		return Proposal{Errors: p.Errors, Warnings: p.Warnings}
	}
	return p
}

// sourceTree returns the tree hash of app's source at src, or why the
// commit cannot be applied. A folder's is its tree hash without
// SourceExcludes; an archive's (IsArchiveSource) is its blob hash, so a new
// archive is a new release and the same one the same release, once
// archive.Check has found it a zip staging can unpack.
func sourceTree(t Tree, app, src string) (string, string) {
	if !IsArchiveSource(t.FS(), src) {
		hash, err := t.TreeHash(src, SourceExcludes...)
		if err != nil {
			what := "source folder"
			if manifests.IsArchive(src) {
				what = "source archive"
			}
			return "", fmt.Sprintf("app %q: %s %q is not in the commit", app, what, src)
		}
		return hash, ""
	}
	hash, err := t.TreeHash(src)
	if err != nil {
		return "", fmt.Sprintf("app %q: source archive %q is not in the commit", app, src)
	}
	if err := checkArchive(t.FS(), src); err != nil {
		return "", fmt.Sprintf("app %q: source %v", app, err) // "archive <path>: …"
	}
	return hash, ""
}

// checkArchive reads the archive at p and checks it as staging will
// unpack it.
func checkArchive(fsys fs.FS, p string) error {
	f, err := archive.Open(fsys, p)
	if err != nil {
		return err
	}
	defer f.Close()
	return archive.Check(p, f, f.Size)
}

// IsArchiveSource reports whether an app's source at path p of fsys is an
// archive whose contents are the source (a .jar, .war or .zip file; see
// manifests.IsArchive) rather than a folder: staging unpacks it.
func IsArchiveSource(fsys fs.FS, p string) bool {
	if !manifests.IsArchive(p) {
		return false
	}
	info, err := fs.Stat(fsys, p)
	return err == nil && !info.IsDir()
}

// newRelease builds the release an app entry asks for, with its id.
func newRelease(app manifests.App, opts Options, srcPath, tree string, ingress []model.IngressRule) model.Release {
	run := model.RunSpec{
		Command:      app.Command,
		Env:          app.Env,
		MemoryMB:     int64(app.MemoryMB),
		DiskMB:       int64(app.DiskMB),
		LogRateLimit: app.LogRateLimit,
		Routes:       Routes(app, opts.Space, opts.Domain),
		HealthCheck:  app.HealthCheck,
		Services:     app.Services,
		HTTP2Routes:  HTTP2Routes(app, opts.Domain),
		Sidecars:     app.Sidecars,
		Ingress:      ingress,
	}
	for _, r := range app.Routes {
		if r.LoadBalancing != model.BalanceDefault {
			run.Balance = r.LoadBalancing
		}
	}
	rel := model.Release{
		Space: opts.Space, App: app.Name, Commit: opts.Commit,
		SourcePath: srcPath, SourceTree: tree,
		Buildpacks: app.Buildpacks, Stack: app.Stack,
		Run: run, State: model.ReleaseStaging,
		Docker: app.Docker,
	}
	for _, p := range app.Processes {
		rel.Processes = append(rel.Processes, model.Process{Type: p.Type, Command: p.Command,
			MemoryMB: int64(p.MemoryMB), DiskMB: int64(p.DiskMB), HealthCheck: p.HealthCheck, LogRateLimit: p.LogRateLimit})
	}
	rel.ID = ReleaseID(rel)
	return rel
}

// Ingress groups a space's network policies by destination app: the
// rules each app's release carries (RunSpec.Ingress), sorted so that the
// order of the file does not make a new release.
func Ingress(pols []model.NetworkPolicy) map[string][]model.IngressRule {
	out := map[string][]model.IngressRule{}
	for _, p := range pols {
		out[p.Destination] = append(out[p.Destination], p.Ingress())
	}
	for _, rules := range out {
		slices.SortFunc(rules, func(a, b model.IngressRule) int {
			return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.Protocol, b.Protocol),
				cmp.Compare(a.Ports.Start, b.Ports.Start), cmp.Compare(a.Ports.End, b.Ports.End))
		})
	}
	return out
}

// processCounts is the instance count of each of the app's process types
// other than web (nil when it has none).
func processCounts(app manifests.App) map[string]int {
	if len(app.Processes) == 0 {
		return nil
	}
	out := make(map[string]int, len(app.Processes))
	for _, p := range app.Processes {
		out[p.Type] = p.Instances
	}
	return out
}

// ReleaseID derives a release's id from what decides how it is built and
// run: source tree, buildpacks, stack and the run spec (command, env,
// limits, routes, health check). The instance count, metadata and commit
// are left out, so scaling or an unrelated commit keeps the release; so
// are the instance counts of the other process types, which are not part
// of model.Process.
func ReleaseID(r model.Release) string {
	key := struct {
		Space, App string
		Tree       string
		Buildpacks []string
		Stack      string
		Run        model.RunSpec
		Processes  []model.Process    `json:",omitempty"`
		Docker     *model.DockerImage `json:",omitempty"`
	}{r.Space, r.App, r.SourceTree, r.Buildpacks, r.Stack, r.Run, r.Processes, r.Docker}
	key.Run.Droplet = ""
	data, err := json.Marshal(key) // maps marshal with sorted keys: stable
	if err != nil {
		panic(fmt.Sprintf("encoding release key: %v", err)) // plain data cannot fail
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:16]
}

// StagingKey identifies what a droplet is built from — source tree,
// buildpacks, stack and the JBP_CONFIG_* variables of the env (the java
// buildpack applies them at staging, as Cloud Foundry's does) — so that
// the same source is never staged twice.
func StagingKey(r model.Release) string {
	key := r.SourceTree + "\x00" + strings.Join(r.Buildpacks, ",") + "\x00" + r.Stack
	for _, k := range slices.Sorted(maps.Keys(r.Run.Env)) {
		if strings.HasPrefix(k, "JBP_CONFIG_") {
			key += "\x00" + k + "=" + r.Run.Env[k]
		}
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])[:32]
}

// Routes resolves an app's routes to "host[/path]" strings: routes as
// written (lower-case host), a domain-less legacy host completed with the
// default domain, and the default route "<app>.<domain>" when the app
// declares none and does not say no-route.
func Routes(app manifests.App, space, domain string) []string {
	if app.NoRoute {
		return nil
	}
	var out []string
	for _, r := range app.Routes {
		switch {
		case r.Domain != "":
			out = append(out, model.NormalizeRoute(r.Route))
		case r.Host != "": // legacy host without domain
			out = append(out, model.NormalizeRoute(r.Host+"."+domain+r.Path))
		}
	}
	if len(out) == 0 && domain != "" {
		host := strings.ToLower(app.Name)
		if app.RandomRoute {
			sum := sha256.Sum256([]byte(space + "/" + app.Name))
			host += "-" + hex.EncodeToString(sum[:3])
		}
		out = append(out, host+"."+domain)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// LocalTree is a Tree over files that are not a git commit (a folder being
// checked before it is pushed): it has no tree hashes, so its releases'
// ids say nothing, but everything else is decided as for a commit.
type LocalTree struct{ Files fs.FS }

// FS returns the files.
func (t LocalTree) FS() fs.FS { return t.Files }

// TreeHash checks that the folder exists and returns "".
func (t LocalTree) TreeHash(p string, _ ...string) (string, error) {
	if _, err := fs.Stat(t.Files, p); err != nil {
		return "", fmt.Errorf("folder %s: %w", p, err)
	}
	return "", nil
}
