package decide

import (
	"fmt"
	"testing"

	"github.com/driftless/driftless/model"
)

func TestRouteChanges(t *testing.T) {
	key := model.AppKey{Space: "dev", Name: "web"}
	cur := model.Release{ID: "r1", Space: "dev", App: "web", Run: model.RunSpec{Routes: []string{"web.example", "old.example"}}}
	st := State{Apps: map[model.AppKey]model.App{key: {Space: "dev", Name: "web", CurrentID: "r1"}},
		Releases: map[model.AppKey]map[string]model.Release{key: {"r1": cur}}}
	tests := []struct {
		name string
		rel  model.Release
		want string
	}{
		{"a route added and one dropped", model.Release{ID: "r2", Space: "dev", App: "web", Run: model.RunSpec{Routes: []string{"web.example", "new.example"}}},
			"[{dev/web r2 [new.example] [old.example]}]"},
		{"same routes", model.Release{ID: "r2", Space: "dev", App: "web", Run: model.RunSpec{Routes: []string{"old.example", "web.example"}}}, "[]"},
		{"a new app", model.Release{ID: "r9", Space: "dev", App: "api", Run: model.RunSpec{Routes: []string{"api.example"}}}, "[{dev/api r9 [api.example] []}]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RouteChanges(st, Changes{Releases: []model.Release{tt.rel}})
			s := "["
			for i, rc := range got {
				if i > 0 {
					s += " "
				}
				s += fmt.Sprintf("{%s/%s %s %v %v}", rc.Key.Space, rc.Key.Name, rc.Release, rc.Added, rc.Dropped)
			}
			if s += "]"; s != tt.want {
				t.Errorf("RouteChanges = %s, want %s", s, tt.want)
			}
		})
	}
}
