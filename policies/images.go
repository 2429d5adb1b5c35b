package policies

import (
	"context"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/rego"
)

// RootImageRule is the rule a policy defines to let a docker image whose
// config says it runs as root be deployed: a boolean rule
// `allow_root_image` in any package under "driftless.", judged on a
// RootImageInput. Instances still run as uid 2000: allowing the image
// says that it works so.
const RootImageRule = "allow_root_image"

// rootImageQuery finds the packages whose allow_root_image is true.
const rootImageQuery = "data.driftless[policy]." + RootImageRule + " == true"

// Docker is an app's docker image as the policies see it
// (input.apps[_].docker, input.app.docker): null for buildpack apps.
type Docker struct {
	// Image is the reference as the manifest writes it; Username the
	// registry user ("" for anonymous).
	Image    string `json:"image"`
	Username string `json:"username"`
	// User is the image config's USER ("" for none) and Digest the
	// image's manifest digest; both known only once the controller has
	// resolved the image (RootImageInput), empty in a commit's Input.
	User   string `json:"user"`
	Digest string `json:"digest"`
}

// RootImageInput is what allow_root_image judges: the app whose image
// runs as root, when the controller stages it.
type RootImageInput struct {
	Space string   `json:"space"`
	Org   string   `json:"org"`
	App   ImageApp `json:"app"`
}

// ImageApp is input.app of a RootImageInput.
type ImageApp struct {
	Name   string `json:"name"`
	Docker Docker `json:"docker"`
}

// prepareRootImageQuery compiles the allow_root_image query over the same
// modules and data as the deny query (opts, whose query it replaces).
func prepareRootImageQuery(ctx context.Context, opts []func(*rego.Rego)) (rego.PreparedEvalQuery, error) {
	opts = append(slices.Clip(opts), rego.Query(rootImageQuery))
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, fmt.Errorf("compiling the %s query: %w", RootImageRule, err)
	}
	return pq, nil
}

// AllowsRootImage reports whether a policy of the set allows in's image to
// run although its config says root, and which policies (packages) do.
func (s *Set) AllowsRootImage(ctx context.Context, in RootImageInput) (bool, []string, error) {
	if s == nil || s.rootImage == nil {
		return false, nil, nil
	}
	rs, err := s.rootImage.Eval(ctx, rego.EvalInput(in))
	if err != nil {
		return false, nil, fmt.Errorf("evaluating %s for app %s: %w", RootImageRule, in.App.Name, err)
	}
	var by []string
	for _, r := range rs {
		if p, ok := r.Bindings["policy"].(string); ok {
			by = append(by, p)
		}
	}
	slices.Sort(by)
	return len(by) > 0, slices.Compact(by), nil
}
