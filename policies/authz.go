package policies

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// AuthzPackage is the package that decides who may do what through the
// API. The built-in one (bundle/authz.rego) holds unless a policy source
// has its own, which then replaces it as a whole.
const AuthzPackage = "driftless.authz"

const (
	authzAllowQuery   = "data.driftless.authz.allow"
	authzReasonsQuery = "data.driftless.authz.reasons[r]"
	authzBuiltinFile  = "authz.rego"
)

// Subject is who asks: a token's name, role and spaces.
type Subject struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Spaces []string `json:"spaces"`
}

// AuthzInput is the question "may Subject do Verb on Resource in Space"
// (Space "" is the platform as a whole).
type AuthzInput struct {
	Subject  Subject `json:"subject"`
	Verb     string  `json:"verb"`
	Resource string  `json:"resource"`
	Space    string  `json:"space"`
}

// Decision is the policies' answer: allowed, or why not.
type Decision struct {
	Allow bool `json:"allow"`
	// Reasons explain a refusal (the rule `reasons`); empty when the
	// policies give none.
	Reasons []string `json:"reasons,omitempty"`
}

// Reason is the refusal as one sentence.
func (d Decision) Reason(in AuthzInput) string {
	if len(d.Reasons) > 0 {
		return strings.Join(d.Reasons, "; ")
	}
	where := "the platform"
	if in.Space != "" {
		where = "space " + in.Space
	}
	return fmt.Sprintf("no rule of %s allows role %s to %s %s in %s", AuthzPackage, in.Subject.Role, in.Verb, in.Resource, where)
}

// authz holds the compiled authorization queries of a Set.
type authz struct {
	allow, reasons rego.PreparedEvalQuery
}

// withBuiltinAuthz adds the built-in authz module to modules unless one of
// them is in AuthzPackage.
func withBuiltinAuthz(modules map[string]*ast.Module) (map[string]*ast.Module, error) {
	for _, m := range modules {
		if strings.TrimPrefix(m.Package.Path.String(), "data.") == AuthzPackage {
			return modules, nil
		}
	}
	src, err := fs.ReadFile(bundle, "bundle/"+authzBuiltinFile)
	if err != nil {
		return nil, fmt.Errorf("the built-in %s: %w", AuthzPackage, err)
	}
	m, err := ast.ParseModuleWithOpts("built-in:"+authzBuiltinFile, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("the built-in %s: %w", AuthzPackage, err)
	}
	out := make(map[string]*ast.Module, len(modules)+1)
	for k, v := range modules {
		out[k] = v
	}
	out["built-in:"+authzBuiltinFile] = m
	return out, nil
}

// prepareAuthz compiles the authz queries over the same modules and data
// as the deny query (opts, whose query it replaces).
func prepareAuthz(ctx context.Context, opts []func(*rego.Rego)) (*authz, error) {
	var a authz
	var err error
	if a.allow, err = rego.New(append(slices.Clip(opts), rego.Query(authzAllowQuery))...).PrepareForEval(ctx); err != nil {
		return nil, fmt.Errorf("compiling %s.allow: %w", AuthzPackage, err)
	}
	if a.reasons, err = rego.New(append(slices.Clip(opts), rego.Query(authzReasonsQuery))...).PrepareForEval(ctx); err != nil {
		return nil, fmt.Errorf("compiling %s.reasons: %w", AuthzPackage, err)
	}
	return &a, nil
}

// Authorize asks the set's driftless.authz whether in is allowed. A set
// without authz (nil) allows nothing.
func (s *Set) Authorize(ctx context.Context, in AuthzInput) (Decision, error) {
	if s == nil || s.authz == nil {
		return Decision{Reasons: []string{"no authorization policy is loaded"}}, nil
	}
	if in.Subject.Spaces == nil {
		in.Subject.Spaces = []string{}
	}
	rs, err := s.authz.allow.Eval(ctx, rego.EvalInput(in))
	if err != nil {
		return Decision{}, fmt.Errorf("evaluating %s.allow: %w", AuthzPackage, err)
	}
	if rs.Allowed() {
		return Decision{Allow: true}, nil
	}
	rs, err = s.authz.reasons.Eval(ctx, rego.EvalInput(in))
	if err != nil {
		return Decision{}, fmt.Errorf("evaluating %s.reasons: %w", AuthzPackage, err)
	}
	var d Decision
	for _, r := range rs {
		if msg, ok := r.Bindings["r"].(string); ok {
			d.Reasons = append(d.Reasons, msg)
		}
	}
	slices.Sort(d.Reasons)
	return d, nil
}
