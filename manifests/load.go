package manifests

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"

	"github.com/driftless/driftless/model"
)

// ManifestNames are the file names LoadFS reads as manifests.
var ManifestNames = []string{"manifest.yml", "manifest.yaml"}

// VarsName is the vars file read beside each manifest.
const VarsName = "vars.yml"

// PreviewVarsName is the vars file a pull request's preview reads beside
// a manifest instead of VarsName, when it is there (LoadOptions.Preview).
const PreviewVarsName = "vars-preview.yml"

// LoadOptions change how LoadFSWith reads a tree.
type LoadOptions struct {
	// Preview reads PreviewVarsName beside a manifest instead of VarsName
	// when the tree has it (a pull request's preview).
	Preview bool
}

// Set is every manifest of a tree.
type Set struct {
	Manifests []*Manifest
	// Services are the service instances of every services.yml, in file
	// order (a name declared twice is an error).
	Services []model.ServiceDecl
	// NetworkPolicies are the rules of every network-policies.yml, in
	// file order; each names apps the tree declares.
	NetworkPolicies []model.NetworkPolicy
	// Diagnostics are every manifest's diagnostics and the errors that
	// span manifests (an app declared in two of them).
	Diagnostics Diagnostics
}

// Apps returns the apps of every manifest, in manifest order.
func (s *Set) Apps() []App {
	var out []App
	for _, m := range s.Manifests {
		out = append(out, m.Apps...)
	}
	return out
}

// LoadFS reads every manifest.yml (and manifest.yaml) under root in fsys,
// with the vars.yml beside each one. Folders named .git are skipped. File
// names in the result are relative to root, with slashes. An app path that
// leaves the tree or names a file that is not an archive (IsArchive), and
// an app name declared twice, are errors.
func LoadFS(fsys fs.FS, root string) *Set { return LoadFSWith(fsys, root, LoadOptions{}) }

// LoadFSWith is LoadFS with options: LoadFS reads with the zero options.
func LoadFSWith(fsys fs.FS, root string, opts LoadOptions) *Set {
	set := &Set{}
	var files, serviceFiles, policyFiles []string
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			set.Diagnostics = append(set.Diagnostics, model.Problem{Position: model.Position{File: rel(root, p)}, Severity: model.Error,
				Message: fmt.Sprintf("reading the tree: %v", err)})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() && d.Name() == ".git" {
			return fs.SkipDir
		}
		if !d.IsDir() && isManifestName(d.Name()) {
			files = append(files, p)
		}
		if !d.IsDir() && d.Name() == model.ServicesFile {
			serviceFiles = append(serviceFiles, p)
		}
		if !d.IsDir() && d.Name() == model.NetworkPoliciesFile {
			policyFiles = append(policyFiles, p)
		}
		return nil
	})
	if err != nil {
		set.Diagnostics = append(set.Diagnostics, model.Problem{Position: model.Position{File: root}, Severity: model.Error, Message: fmt.Sprintf("reading the tree: %v", err)})
	}
	sort.Strings(files)
	seen := map[string]model.Position{}
	for _, p := range files {
		name := rel(root, p)
		m := loadOne(fsys, p, name, opts)
		var kept []App
		for _, app := range m.Apps {
			src := path.Join(path.Dir(name), app.Path)
			if src == ".." || len(src) > 2 && src[:3] == "../" {
				m.Diagnostics = append(m.Diagnostics, model.Problem{Position: pathPos(app), Severity: model.Error,
					Message: fmt.Sprintf("app %q: path %q leaves the repository", app.Name, app.Path)})
				continue
			}
			if info, err := fs.Stat(fsys, path.Join(root, src)); err == nil && !info.IsDir() && !IsArchive(src) {
				m.Diagnostics = append(m.Diagnostics, model.Problem{Position: pathPos(app), Severity: model.Error,
					Message: fmt.Sprintf("app %q: path %q names a file; point it at a folder or at a .jar, .war or .zip archive", app.Name, app.Path)})
				continue
			}
			if first, dup := seen[app.Name]; dup {
				m.Diagnostics = append(m.Diagnostics, model.Problem{Position: app.Pos, Severity: model.Error,
					Message: fmt.Sprintf("app %q is already declared at %s", app.Name, first)})
				continue
			}
			seen[app.Name] = app.Pos
			kept = append(kept, app)
		}
		m.Apps = kept
		set.Manifests = append(set.Manifests, m)
		set.Diagnostics = append(set.Diagnostics, m.Diagnostics...)
	}
	sort.Strings(serviceFiles)
	declared := map[string]model.Position{}
	for _, p := range serviceFiles {
		name := rel(root, p)
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			set.Diagnostics = append(set.Diagnostics, model.Problem{Position: model.Position{File: name}, Severity: model.Error, Message: fmt.Sprintf("reading: %v", err)})
			continue
		}
		vars, vdiags := readVars(fsys, p, name, opts)
		sm := ParseServices(name, data, vars)
		if !slices.ContainsFunc(files, func(f string) bool { return path.Dir(f) == path.Dir(p) }) {
			set.Diagnostics = append(set.Diagnostics, vdiags...) // else said with the manifest beside it
		}
		set.Diagnostics = append(set.Diagnostics, sm.Diagnostics...)
		for _, s := range sm.Services {
			if first, dup := declared[s.Name]; dup {
				set.Diagnostics = append(set.Diagnostics, model.Problem{Position: s.Pos, Severity: model.Error,
					Message: fmt.Sprintf("service %q is already declared at %s", s.Name, first)})
				continue
			}
			declared[s.Name] = s.Pos
			set.Services = append(set.Services, s)
		}
	}
	set.Diagnostics = append(set.Diagnostics, loadPolicies(fsys, root, policyFiles, set)...)
	sortDiags(set.Diagnostics)
	return set
}

// loadPolicies reads the network-policies.yml files at paths into set,
// checking that the apps they name are among set's apps; it returns the
// problems.
func loadPolicies(fsys fs.FS, root string, paths []string, set *Set) Diagnostics {
	sort.Strings(paths)
	apps := map[string]bool{}
	for _, app := range set.Apps() {
		apps[app.Name] = true
	}
	var diags Diagnostics
	seen := map[model.NetworkPolicy]model.Position{}
	for _, p := range paths {
		name := rel(root, p)
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			diags = append(diags, model.Problem{Position: model.Position{File: name}, Severity: model.Error, Message: fmt.Sprintf("reading: %v", err)})
			continue
		}
		np := ParseNetworkPolicies(name, data)
		diags = append(diags, np.Diagnostics...)
		diags = append(diags, checkPolicyApps(np.Policies, apps)...)
		for _, pol := range np.Policies {
			key := pol
			key.Pos = model.Position{}
			if first, dup := seen[key]; dup {
				diags = append(diags, model.Problem{Position: pol.Pos, Severity: model.Error,
					Message: fmt.Sprintf("this policy is already declared at %s", first)})
				continue
			}
			seen[key] = pol.Pos
			set.NetworkPolicies = append(set.NetworkPolicies, pol)
		}
	}
	return diags
}

func isManifestName(n string) bool {
	for _, m := range ManifestNames {
		if n == m {
			return true
		}
	}
	return false
}

// rel returns p relative to root.
func rel(root, p string) string {
	if root == "." || root == "" {
		return p
	}
	if r, ok := cutPrefixDir(p, root); ok {
		return r
	}
	return p
}

func cutPrefixDir(p, dir string) (string, bool) {
	if len(p) > len(dir) && p[:len(dir)] == dir && p[len(dir)] == '/' {
		return p[len(dir)+1:], true
	}
	return "", false
}

// loadOne parses the manifest at p (named name in diagnostics) with its
// vars file (for a preview, vars-preview.yml when there is one).
func loadOne(fsys fs.FS, p, name string, opts LoadOptions) *Manifest {
	data, err := fs.ReadFile(fsys, p)
	if err != nil {
		return &Manifest{File: name, Diagnostics: Diagnostics{{Position: model.Position{File: name}, Severity: model.Error, Message: fmt.Sprintf("reading: %v", err)}}}
	}
	vars, vdiags := readVars(fsys, p, name, opts)
	m := Parse(name, data, vars)
	m.Diagnostics = append(vdiags, m.Diagnostics...)
	return m
}

// readVars reads the vars file beside the file at p (named name in
// diagnostics): vars.yml, or for a preview vars-preview.yml when there is
// one.
func readVars(fsys fs.FS, p, name string, opts LoadOptions) (map[string]any, Diagnostics) {
	varsName := VarsName
	if opts.Preview {
		if _, err := fs.Stat(fsys, path.Join(path.Dir(p), PreviewVarsName)); err == nil {
			varsName = PreviewVarsName
		}
	}
	vdata, err := fs.ReadFile(fsys, path.Join(path.Dir(p), varsName))
	if err != nil {
		return nil, nil
	}
	return ParseVars(path.Join(path.Dir(name), varsName), vdata)
}

// pathPos is where an app's path is written, or the app's entry.
func pathPos(app App) model.Position {
	if fp, ok := app.Fields["path"]; ok {
		return fp
	}
	return app.Pos
}
