package decide

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/driftless/driftless/manifests"
	"github.com/driftless/driftless/model"
)

// routePositions maps each of an app's routes, as Routes resolves them, to
// where the manifest writes it; a route the manifest does not write (the
// default route) is at the app's entry.
func routePositions(app manifests.App, space, domain string) map[string]model.Position {
	out := map[string]model.Position{}
	for _, r := range app.Routes {
		switch {
		case r.Domain != "":
			out[model.NormalizeRoute(r.Route)] = r.Pos
		case r.Host != "":
			out[model.NormalizeRoute(r.Host+"."+domain+r.Path)] = r.Pos
		}
	}
	for _, r := range Routes(app, space, domain) {
		if _, ok := out[r]; !ok {
			out[r] = app.Pos
		}
	}
	return out
}

// RouteClaims checks the proposal's routes against the routes other apps
// hold. A route (host and path) belongs to the space that declared it
// first: declaring one that an app of another space holds is an error at
// the route's line, and traffic stays where it goes. Within one space, an
// app of another source or of the same commit on the same route is
// allowed (blue-green) with a warning, since the router then spreads the
// route's requests over both apps.
func RouteClaims(prop Proposal, st State) (errs, warns []model.Problem) {
	type holder struct {
		key    model.AppKey
		source string
	}
	held := map[string][]holder{}
	for key, a := range st.Apps {
		for _, r := range a.Routes {
			held[r] = append(held[r], holder{key, a.Source})
		}
	}
	proposed := map[string][]string{} // route → apps of the proposal
	for _, a := range prop.Apps {
		for _, r := range a.Routes {
			proposed[r] = append(proposed[r], a.Name)
		}
	}
	for _, a := range prop.Apps {
		for _, r := range a.Routes {
			pos := prop.RoutePos[a.Name][r]
			if pos == (model.Position{}) {
				pos = model.Position{File: a.File, Line: a.Line}
			}
			hs := held[r]
			slices.SortFunc(hs, func(x, y holder) int {
				return cmp.Or(cmp.Compare(x.key.Space, y.key.Space), cmp.Compare(x.key.Name, y.key.Name))
			})
			var shared []string
			for _, h := range hs {
				switch {
				case h.key.Space != a.Space:
					errs = append(errs, model.Problem{Position: pos, App: a.Name,
						Message: fmt.Sprintf("route %s belongs to space %q (app %s): a route is its first space's; choose another host or path", r, h.key.Space, h.key.Name)})
				case h.key.Name != a.Name && h.source != a.Source:
					shared = append(shared, h.key.Name)
				}
			}
			for _, other := range proposed[r] {
				if other != a.Name {
					shared = append(shared, other)
				}
			}
			if len(shared) > 0 {
				slices.Sort(shared)
				warns = append(warns, model.Problem{Position: pos, App: a.Name,
					Message: fmt.Sprintf("route %s is also app %s's: the router spreads its requests over both apps", r, strings.Join(slices.Compact(shared), " and "))})
			}
		}
	}
	return errs, warns
}
