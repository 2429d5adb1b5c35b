// Package policies is policy as code: a set of Rego policies and data
// files (quotas.yml) compiled once per policy commit with OPA, evaluated
// against the whole proposed desired state of a space before anything of a
// commit is applied. The controller (reconciler/apply.go) refuses a commit
// whose space has violations.
//
// A policy is a Rego module in a package under "driftless." that defines
// a set rule deny of objects {"msg": string, "app": string (optional)}.
package policies

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/manifests"
	"github.com/driftless/driftless/model"
)

//go:embed bundle/*.rego bundle/quotas.yml
var bundle embed.FS

// QuotasFile is the quota data file at the root of a policy source.
const QuotasFile = "quotas.yml"

// query collects every violation of every policy.
const query = "data.driftless[policy].deny[v]"

// Set is a compiled policy set.
type Set struct {
	// Files are the Rego files of the set, sorted.
	Files []string
	query rego.PreparedEvalQuery
	// perApp lists the spaces (and "default") whose quotas say
	// `enforcement: per-app`.
	perApp map[string]bool
	// Previews is the budget of pull-request previews (quotas.yml
	// `previews:`), with defaults for the keys not given.
	Previews PreviewBudget
	// rootImage asks the allow_root_image rules (images.go).
	rootImage *rego.PreparedEvalQuery
	// authz decides who may do what through the API (authz.go).
	authz *authz
}

// Enforcement modes of quotas.yml's `enforcement` key.
const (
	// EnforceSpace refuses a whole commit of a space on any violation
	// (the default).
	EnforceSpace = "space"
	// EnforcePerApp refuses only the apps a violation names; violations
	// of the space as a whole still refuse everything.
	EnforcePerApp = "per-app"
)

// PerApp reports whether violations in space block only the apps they
// name (quotas.yml: `enforcement: per-app` for the space or the default).
func (s *Set) PerApp(space string) bool {
	if v, ok := s.perApp[space]; ok {
		return v
	}
	return s.perApp["default"]
}

// LoadError lists what is wrong with a policy source.
type LoadError struct{ Problems []model.Problem }

func (e *LoadError) Error() string {
	var parts []string
	for _, p := range e.Problems {
		parts = append(parts, p.String())
	}
	return "policies: " + strings.Join(parts, "; ")
}

// bundleModules are the built-in bundle's rules, without its data.
func bundleModules() (map[string]*ast.Module, error) {
	sub, err := fs.Sub(bundle, "bundle")
	if err != nil {
		return nil, err
	}
	modules, _, err := read(sub, false)
	if err != nil {
		return nil, fmt.Errorf("the built-in policies: %w", err)
	}
	return modules, nil
}

// Default is the built-in bundle: the quota policy and quotas.yml of
// policies/bundle.
func Default(ctx context.Context) (*Set, error) {
	sub, err := fs.Sub(bundle, "bundle")
	if err != nil {
		return nil, err
	}
	return Load(ctx, sub)
}

// Load reads every *.rego file (tests, *_test.rego, are left out) and
// quotas.yml of fsys and compiles them. A source with any error is
// refused as a whole with a *LoadError naming file:line. A source with
// quotas.yml and no .rego file applies the built-in rules to its quotas
// (the first thing a platform team writes is often quotas alone); its
// Files name them "built-in:<file>".
func Load(ctx context.Context, fsys fs.FS) (*Set, error) {
	modules, data, err := read(fsys, false)
	if err != nil {
		return nil, err
	}
	builtin := ""
	if len(modules) == 0 {
		if data["quotas"] == nil {
			return nil, &LoadError{[]model.Problem{{Message: "no .rego policy and no " + QuotasFile + " in the policy source"}}}
		}
		if modules, err = bundleModules(); err != nil {
			return nil, err
		}
		builtin = "built-in:"
	}
	withAuthz, err := withBuiltinAuthz(modules)
	if err != nil {
		return nil, err
	}
	opts := []func(*rego.Rego){rego.Query(query), rego.Store(inmem.NewFromObject(data))}
	s := &Set{perApp: enforcement(data), Previews: previewBudget(data)}
	for name, m := range withAuthz {
		opts = append(opts, rego.ParsedModule(m))
		if _, own := modules[name]; own {
			s.Files = append(s.Files, builtin+name)
		}
	}
	if builtin != "" {
		s.Files = append(s.Files, QuotasFile)
	}
	slices.Sort(s.Files)
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, loadError(err)
	}
	s.query = pq
	rq, err := prepareRootImageQuery(ctx, opts)
	if err != nil {
		return nil, loadError(err)
	}
	s.rootImage = &rq
	if s.authz, err = prepareAuthz(ctx, opts); err != nil {
		return nil, loadError(err)
	}
	return s, nil
}

// read parses the Rego modules (with tests when withTests) and the data of
// fsys.
func read(fsys fs.FS, withTests bool) (map[string]*ast.Module, map[string]any, error) {
	modules := map[string]*ast.Module{}
	var problems []model.Problem
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if path.Ext(p) != ".rego" || (!withTests && strings.HasSuffix(p, "_test.rego")) {
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		m, err := ast.ParseModuleWithOpts(p, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			problems = append(problems, astProblems(err)...)
			return nil
		}
		modules[p] = m
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading the policy source: %w", err)
	}
	data := map[string]any{}
	quotas, qp := readQuotas(fsys)
	problems = append(problems, qp...)
	if quotas != nil {
		data["quotas"] = quotas
	}
	// Other data files at the root: data.<name> (e.g. domains.yml →
	// data.domains).
	entries, _ := fs.ReadDir(fsys, ".")
	for _, e := range entries {
		name := e.Name()
		ext := path.Ext(name)
		if e.IsDir() || name == QuotasFile || (ext != ".yml" && ext != ".yaml" && ext != ".json") {
			continue
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			problems = append(problems, model.Problem{Position: model.Position{File: name}, Message: err.Error()})
			continue
		}
		var v any
		if err := yaml.Unmarshal(src, &v); err != nil { // JSON is YAML
			problems = append(problems, model.Problem{Position: model.Position{File: name, Line: yamlLine(err)}, Message: err.Error()})
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			problems = append(problems, model.Problem{Position: model.Position{File: name}, Message: fmt.Sprintf("not JSON-compatible data: %v", err)})
			continue
		}
		var jv any
		_ = json.Unmarshal(b, &jv)
		data[strings.TrimSuffix(name, ext)] = jv
	}
	if len(problems) > 0 {
		return nil, nil, &LoadError{problems}
	}
	return modules, data, nil
}

// enforcement reads the `enforcement` key of the default and of each
// space in the quotas.
func enforcement(data map[string]any) map[string]bool {
	out := map[string]bool{}
	q, _ := data["quotas"].(map[string]any)
	if d, ok := q["default"].(map[string]any); ok {
		out["default"] = d["enforcement"] == EnforcePerApp
	}
	spaces, _ := q["spaces"].(map[string]any)
	for name, v := range spaces {
		if m, ok := v.(map[string]any); ok {
			if e, ok := m["enforcement"].(string); ok {
				out[name] = e == EnforcePerApp
			}
		}
	}
	return out
}

// sizeKeys are the quota keys given as sizes ("2G"), turned into MB.
var sizeKeys = map[string]bool{"memory": true, "instance_memory": true, "disk": true, "instance_disk": true}

// rateKeys are the quota keys given as log rates ("1M"), turned into
// bytes per second (-1: no limit).
var rateKeys = map[string]bool{"log_rate_limit": true}

// readQuotas reads quotas.yml (absent: no quotas) with sizes in MB and
// log rates in bytes per second.
func readQuotas(fsys fs.FS) (map[string]any, []model.Problem) {
	src, err := fs.ReadFile(fsys, QuotasFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []model.Problem{{Position: model.Position{File: QuotasFile}, Message: err.Error()}}
	}
	var raw struct {
		Default  map[string]any            `yaml:"default"`
		Spaces   map[string]map[string]any `yaml:"spaces"`
		Orgs     map[string]map[string]any `yaml:"orgs"`
		Previews map[string]any            `yaml:"previews"`
	}
	if err := yaml.Unmarshal(src, &raw); err != nil {
		return nil, []model.Problem{{Position: model.Position{File: QuotasFile, Line: yamlLine(err)}, Message: err.Error()}}
	}
	var problems []model.Problem
	norm := func(where string, m map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			if sizeKeys[k] {
				mb, err := manifests.ParseSize(fmt.Sprint(v))
				if err != nil {
					problems = append(problems, model.Problem{Position: model.Position{File: QuotasFile}, Message: fmt.Sprintf("%s.%s: %v", where, k, err)})
					continue
				}
				out[k] = mb
				continue
			}
			if rateKeys[k] {
				b, err := manifests.ParseLogRate(fmt.Sprint(v))
				if err != nil {
					problems = append(problems, model.Problem{Position: model.Position{File: QuotasFile}, Message: fmt.Sprintf("%s.%s: %v", where, k, err)})
					continue
				}
				out[k] = b
				continue
			}
			out[k] = v
		}
		return out
	}
	q := map[string]any{"default": norm("default", raw.Default)}
	spaces := map[string]any{}
	for name, m := range raw.Spaces {
		spaces[name] = norm("spaces."+name, m)
	}
	q["spaces"] = spaces
	orgs := map[string]any{}
	for name, m := range raw.Orgs {
		orgs[name] = norm("orgs."+name, m)
	}
	q["orgs"] = orgs
	if raw.Previews != nil {
		q["previews"] = normPreviews(raw.Previews, norm, &problems)
	}
	// Round-trip through JSON: the store wants JSON types.
	b, err := json.Marshal(q)
	if err != nil {
		return nil, append(problems, model.Problem{Position: model.Position{File: QuotasFile}, Message: err.Error()})
	}
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out, problems
}

func yamlLine(err error) int {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		return 0
	}
	var line int
	if _, scanErr := fmt.Sscanf(err.Error(), "yaml: line %d:", &line); scanErr == nil {
		return line
	}
	return 0
}

// astProblems turns OPA parse or compile errors into located problems.
func astProblems(err error) []model.Problem {
	var errs ast.Errors
	if errors.As(err, &errs) {
		out := make([]model.Problem, 0, len(errs))
		for _, e := range errs {
			p := model.Problem{Message: e.Message}
			if e.Location != nil {
				p.File, p.Line = e.Location.File, e.Location.Row
			}
			out = append(out, p)
		}
		return out
	}
	return []model.Problem{{Message: err.Error()}}
}

func loadError(err error) error {
	return &LoadError{astProblems(err)}
}

// Input is what policies decide on: the whole proposed desired state of
// one space.
type Input struct {
	Space string `json:"space"`
	// Org is the space's organisation ("" for none); OrgApps are the
	// apps of the org's other spaces, for org quotas.
	Org     string `json:"org"`
	OrgApps []App  `json:"org_apps"`
	Apps    []App  `json:"apps"`
	// Usage is what the space runs now (before the commit), for policies
	// that look at the change rather than the totals.
	Usage Usage `json:"usage"`
	// Preview describes the pull request when the space is a preview's
	// (null otherwise), so policies can treat previews apart.
	Preview *Preview `json:"preview"`
	// Services are the space's service instances as they would be (the
	// proposal's services.yml, plus those other sources declare there).
	Services []Service `json:"services"`
}

// Service is one service instance of a space, as the policies see it.
type Service struct {
	Name string `json:"name"`
	// Service and Plan are the offering's and plan's names; Broker is
	// the broker named in services.yml ("" when any offering it will do).
	Service      string   `json:"service"`
	Plan         string   `json:"plan"`
	Broker       string   `json:"broker"`
	UserProvided bool     `json:"user_provided"`
	Tags         []string `json:"tags"`
	// File and Line locate it in its services.yml (not given to the
	// policies; used to locate violations).
	File string `json:"-"`
	Line int    `json:"-"`
}

// Preview is the pull request a preview space deploys, as the policies
// see it (input.preview).
type Preview struct {
	Number int      `json:"number"`
	Branch string   `json:"branch"`
	Author string   `json:"author"`
	Labels []string `json:"labels"`
	// Open counts the previews of the same source deployed at once,
	// this one included (quotas.yml previews.per_source limits it).
	Open int `json:"open"`
	// Source is the source whose pull request this is.
	Source string `json:"source"`
}

// Usage totals a space's current desired state.
type Usage struct {
	Apps      int   `json:"apps"`
	Instances int   `json:"instances"`
	MemoryMB  int64 `json:"memory_mb"`
}

// App is one app of a proposed desired state.
type App struct {
	Name      string `json:"name"`
	Instances int    `json:"instances"`
	MemoryMB  int64  `json:"memory_mb"`
	DiskMB    int64  `json:"disk_mb"`
	// LogRateLimit is the bytes of log lines per second each web
	// instance may ship (log-rate-limit-per-second); -1 is no limit.
	LogRateLimit int64    `json:"log_rate_limit"`
	Routes       []string `json:"routes"`
	Buildpacks   []string `json:"buildpacks"`
	Stack        string   `json:"stack"`
	// Services are the names of the service instances the app binds.
	Services []string `json:"services"`
	// Processes are its process types other than web (Instances,
	// MemoryMB, DiskMB and LogRateLimit are web's); the built-in quotas
	// count them.
	Processes []Process `json:"processes,omitempty"`
	// Docker is the app's image (manifest docker:), nil for buildpack
	// apps; its User and Digest are empty (the image is resolved at
	// staging, where allow_root_image is asked).
	Docker *Docker `json:"docker"`
	// File and Line locate the app in its manifest (not given to the
	// policies; used to locate violations).
	File string `json:"-"`
	Line int    `json:"-"`
}

// Process is a process type of an app other than web, as policies see
// it.
type Process struct {
	Type      string `json:"type"`
	Instances int    `json:"instances"`
	MemoryMB  int64  `json:"memory_mb"`
	DiskMB    int64  `json:"disk_mb"`
	// LogRateLimit is as App's: bytes per second per instance, -1 for
	// no limit.
	LogRateLimit int64 `json:"log_rate_limit"`
}

// Violation is one thing a policy denies.
type Violation struct {
	// Policy is the policy's package, e.g. "quota".
	Policy string `json:"policy"`
	App    string `json:"app,omitempty"`
	// Service names the service instance the violation is about (a
	// policy's {"service": name}); it is located in its services.yml.
	Service string `json:"service,omitempty"`
	Message string `json:"message"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
}

// Evaluate returns the violations of in, sorted; none means allowed.
func (s *Set) Evaluate(ctx context.Context, in Input) ([]Violation, error) {
	if in.Apps == nil {
		in.Apps = []App{}
	}
	if in.OrgApps == nil {
		in.OrgApps = []App{}
	}
	if in.Services == nil {
		in.Services = []Service{}
	}
	for i := range in.Services {
		if in.Services[i].Tags == nil {
			in.Services[i].Tags = []string{}
		}
	}
	for i := range in.Apps {
		if in.Apps[i].Routes == nil {
			in.Apps[i].Routes = []string{}
		}
		if in.Apps[i].Buildpacks == nil {
			in.Apps[i].Buildpacks = []string{}
		}
		if in.Apps[i].Services == nil {
			in.Apps[i].Services = []string{}
		}
	}
	rs, err := s.query.Eval(ctx, rego.EvalInput(in))
	if err != nil {
		return nil, fmt.Errorf("evaluating policies: %w", err)
	}
	where := map[string]App{}
	for _, a := range in.Apps {
		where[a.Name] = a
	}
	services := map[string]Service{}
	for _, sv := range in.Services {
		services[sv.Name] = sv
	}
	var out []Violation
	for _, r := range rs {
		v := Violation{}
		v.Policy, _ = r.Bindings["policy"].(string)
		obj, _ := r.Bindings["v"].(map[string]any)
		v.Message, _ = obj["msg"].(string)
		v.App, _ = obj["app"].(string)
		if v.Message == "" {
			v.Message = fmt.Sprintf("denied by policy %s: %v", v.Policy, r.Bindings["v"])
		}
		v.Service, _ = obj["service"].(string)
		if a, ok := where[v.App]; ok {
			v.File, v.Line = a.File, a.Line
		} else if sv, ok := services[v.Service]; ok {
			v.File, v.Line = sv.File, sv.Line
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b Violation) int {
		return cmp.Or(cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.App, b.App), cmp.Compare(a.Message, b.Message))
	})
	return out, nil
}
