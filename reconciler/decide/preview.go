package decide

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
)

// PreviewEnv is the variable set in every instance of a pull request's
// preview, to the pull request's number.
const PreviewEnv = "DRIFTLESS_PREVIEW"

// maxLabel is the longest DNS label.
const maxLabel = 63

// Preview is the pull request a preview space deploys.
type Preview struct {
	Number int
	// Branch is the pull request's head branch, Author who opened it.
	Branch string
	Author string
	Labels []string
	// Source is the source whose pull request this is; Open counts its
	// previews deployed at once, this one included (input.preview.open).
	Source string
	Open   int
	// MaxInstances is how many instances each app runs at most (the
	// policies' preview budget; 0 means 1).
	MaxInstances int
}

// Policy is the preview as the policies see it (input.preview).
func (p *Preview) Policy() *policies.Preview {
	if p == nil {
		return nil
	}
	labels := slices.Clone(p.Labels)
	if labels == nil {
		labels = []string{}
	}
	return &policies.Preview{Number: p.Number, Branch: p.Branch, Author: p.Author, Labels: labels, Source: p.Source, Open: p.Open}
}

// PreviewRoute is route ("host[/path]") as the preview of pull request n
// serves it: the first DNS label of the host gets "-pr-<n>" (shortened to
// stay a valid label), the path is kept. ok is false for a wildcard route
// ("*.domain"), which a preview cannot share with production and does not
// get.
func PreviewRoute(route string, n int) (string, bool) {
	host, path := model.SplitRoute(route)
	label, rest, dotted := strings.Cut(host, ".")
	if label == "*" || label == "" {
		return "", false
	}
	suffix := model.PreviewSuffix(n)
	if len(label)+len(suffix) > maxLabel {
		label = strings.TrimRight(label[:maxLabel-len(suffix)], "-")
	}
	out := label + suffix
	if dotted {
		out += "." + rest
	}
	return out + path, true
}

// ForPreview turns the proposal of a pull request's commit (made by
// Desired for the preview's space and source) into its preview: at most
// pr.MaxInstances instances per app (one unless the budget allows more),
// PreviewEnv set to the pull request's number, every route rewritten by
// PreviewRoute (wildcard routes are left out, with a warning), each
// release's id recomputed for what changed, and each service instance its
// own (in the preview's space), on its preview-plan when it has one. A
// proposal with errors is returned as it is: it is refused anyway.
func ForPreview(prop Proposal, pr Preview) Proposal {
	if len(prop.Errors) > 0 {
		return prop
	}
	out := Proposal{Warnings: slices.Clone(prop.Warnings)}
	for _, svc := range prop.Services {
		if svc.Decl.PreviewPlan != "" {
			svc.Decl.Plan = svc.Decl.PreviewPlan // a preview's own, smaller instance
		}
		out.Services = append(out.Services, svc)
	}
	ids := make(map[string]string, len(prop.Releases)) // app → new release id
	for _, r := range prop.Releases {
		r.Run.Env = maps.Clone(r.Run.Env)
		if r.Run.Env == nil {
			r.Run.Env = map[string]string{}
		}
		r.Run.Env[PreviewEnv] = strconv.Itoa(pr.Number)
		var routes []string
		for _, route := range r.Run.Routes {
			pv, ok := PreviewRoute(route, pr.Number)
			if !ok {
				out.Warnings = append(out.Warnings, model.Problem{Severity: model.Warning, App: r.App,
					Message: fmt.Sprintf("app %q: route %s is not served by the preview of pull request %d (a wildcard route stays production's)", r.App, route, pr.Number)})
				continue
			}
			routes = append(routes, pv)
		}
		slices.Sort(routes)
		r.Run.Routes = slices.Compact(routes)
		r.Run.HTTP2Routes = previewHTTP2Routes(r.Run.HTTP2Routes, pr.Number)
		r.ID = ReleaseID(r)
		ids[r.App] = r.ID
		out.Releases = append(out.Releases, r)
	}
	for _, a := range prop.Apps {
		a.Instances = min(a.Instances, max(pr.MaxInstances, 1))
		if id, ok := ids[a.Name]; ok {
			a.ReleaseID = id
		}
		for _, r := range out.Releases {
			if r.App == a.Name {
				a.Routes = r.Run.Routes
			}
		}
		a.Labels = maps.Clone(a.Labels)
		out.Apps = append(out.Apps, a)
	}
	return out
}
