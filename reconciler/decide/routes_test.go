package decide

import (
	"strconv"
	"strings"
	"testing"

	"github.com/driftless/driftless/model"
)

func TestRouteClaims(t *testing.T) {
	stored := func(space, name, source string, routes ...string) model.App {
		return model.App{Space: space, Name: name, Source: source, Routes: routes}
	}
	const manifest = `applications:
- name: shop
  routes:
  - route: shop.apps.localhost
  - route: api.apps.localhost/v1
`
	tests := []struct {
		name       string
		stored     []model.App
		errs       []string
		warns      []string
		noProblems bool
	}{
		{name: "free routes", stored: []model.App{stored("prod", "blog", "b", "blog.apps.localhost")}, noProblems: true},
		{name: "its own routes", stored: []model.App{stored("dev", "shop", "src", "shop.apps.localhost")}, noProblems: true},
		{
			name:   "another space's route is refused at its line",
			stored: []model.App{stored("prod", "shop", "p", "shop.apps.localhost")},
			errs:   []string{`apps/shop/manifest.yml:4: route shop.apps.localhost belongs to space "prod" (app shop)`},
		},
		{
			name:       "the same host with another path is another route",
			stored:     []model.App{stored("prod", "api", "p", "api.apps.localhost/v2", "api.apps.localhost")},
			noProblems: true,
		},
		{
			name:   "a path route of another space",
			stored: []model.App{stored("prod", "api", "p", "api.apps.localhost/v1")},
			errs:   []string{`apps/shop/manifest.yml:5: route api.apps.localhost/v1 belongs to space "prod" (app api)`},
		},
		{
			name:   "another source's app in the same space is a warning",
			stored: []model.App{stored("dev", "shop-green", "other", "shop.apps.localhost")},
			warns:  []string{`apps/shop/manifest.yml:4: route shop.apps.localhost is also app shop-green's`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prop := build(t, map[string]string{"apps/shop/manifest.yml": manifest, "apps/shop/x": "x"})
			for i := range prop.Apps {
				prop.Apps[i].Source = "src"
			}
			st := State{Apps: map[model.AppKey]model.App{}}
			for _, a := range tt.stored {
				st.Apps[a.Key()] = a
			}
			errs, warns := RouteClaims(prop, st)
			check := func(what string, got []model.Problem, want []string) {
				if len(got) != len(want) {
					t.Fatalf("%s: %v, want %q", what, got, want)
				}
				for i, w := range want {
					if s := got[i].File + ":" + strconv.Itoa(got[i].Line) + ": " + got[i].Message; !strings.HasPrefix(s, w) {
						t.Errorf("%s %d: %q, want prefix %q", what, i, s, w)
					}
				}
			}
			check("errors", errs, tt.errs)
			check("warnings", warns, tt.warns)
			if tt.noProblems && len(errs)+len(warns) > 0 {
				t.Errorf("problems: %v %v", errs, warns)
			}
		})
	}
}
