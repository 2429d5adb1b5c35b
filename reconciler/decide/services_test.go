package decide

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/driftless/driftless/model"
)

const webBindsDB = `applications:
- name: web
  memory: 64M
  buildpacks: [binary_buildpack]
  command: ./web
  services: [db]
`

// servicesTree is a commit with web (binding db when manifest says so)
// and the given services.yml ("" for none).
func servicesTree(manifest, services string) mapTree {
	fs := fstest.MapFS{"web/manifest.yml": {Data: []byte(manifest)}, "web/web": {Data: []byte("binary")}}
	if services != "" {
		fs["services.yml"] = &fstest.MapFile{Data: []byte(services)}
	}
	return mapTree{fs}
}

func TestServiceProblems(t *testing.T) {
	opts := Options{Source: "apps", Space: "dev", Commit: "c1", Domain: "apps.localhost"}
	dbDecl := "services:\n- {name: db, service: postgresql, plan: small}\n"
	other := model.ServiceInstance{Space: "dev", Source: "infra", Decl: model.ServiceDecl{Name: "db", Service: "postgresql", Plan: "small",
		Pos: model.Position{File: "services.yml", Line: 2}}}
	mine := other
	mine.Source = "apps"
	otherApp := model.App{Space: "dev", Name: "worker", Source: "infra", ReleaseID: "w1", File: "worker/manifest.yml", Line: 2}
	otherRel := model.Release{ID: "w1", Space: "dev", App: "worker", Run: model.RunSpec{Services: []model.AppService{{Name: "db"}}}}
	tests := []struct {
		name  string
		tree  mapTree
		state State
		want  string // "" for no problem
	}{
		{"declared and bound", servicesTree(webBindsDB, dbDecl), State{}, ""},
		{"bound, declared by another source of the space", servicesTree(webBindsDB, ""),
			State{Services: map[model.ServiceKey]model.ServiceInstance{other.Key(): other}}, ""},
		{"bound, declared nowhere", servicesTree(webBindsDB, ""), State{},
			`web/manifest.yml:2: app "web" binds service "db", which no services.yml of space dev declares`},
		{"bound, declared in another space only", servicesTree(webBindsDB, ""),
			State{Services: map[model.ServiceKey]model.ServiceInstance{{Space: "prod", Name: "db"}: {Space: "prod", Source: "x", Decl: model.ServiceDecl{Name: "db"}}}},
			`binds service "db", which no services.yml of space dev declares`},
		{"declared twice in the space", servicesTree(webBindsDB, dbDecl),
			State{Services: map[model.ServiceKey]model.ServiceInstance{other.Key(): other}},
			`services.yml:2:3: service "db" is already declared in space dev by source infra (services.yml:2)`},
		{"removed while another source's app binds it", servicesTree(strings.Replace(webBindsDB, "  services: [db]\n", "", 1), ""),
			State{Services: map[model.ServiceKey]model.ServiceInstance{mine.Key(): mine},
				Apps:     map[model.AppKey]model.App{otherApp.Key(): otherApp},
				Releases: map[model.AppKey]map[string]model.Release{otherApp.Key(): {"w1": otherRel}}},
			`services.yml:2: service "db" is no longer declared, but app "worker" of source infra (worker/manifest.yml:2) still binds it`},
		{"removed and unbound", servicesTree(strings.Replace(webBindsDB, "  services: [db]\n", "", 1), ""),
			State{Services: map[model.ServiceKey]model.ServiceInstance{mine.Key(): mine}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prop := Desired(tt.tree, opts)
			if len(prop.Errors) > 0 {
				t.Fatal(prop.Errors)
			}
			ps := ServiceProblems(prop, tt.state, "apps", "dev")
			switch {
			case tt.want == "" && len(ps) > 0:
				t.Fatalf("problems %v", ps)
			case tt.want != "" && (len(ps) != 1 || !strings.Contains(ps[0].String(), tt.want)):
				t.Fatalf("problems %v, want one with %q", ps, tt.want)
			}
		})
	}
}

// TestApplyServices: a new instance is stored pending with its own GUID;
// an unchanged one is not written again; a changed plan is pending again
// with its GUID and what the broker holds; one the commit no longer
// declares is marked deleted; a preview's takes its preview-plan.
func TestApplyServices(t *testing.T) {
	opts := Options{Source: "apps", Space: "dev", Commit: "c1", Domain: "apps.localhost"}
	now := time.Now()
	decl := "services:\n- {name: db, service: postgresql, plan: small, preview-plan: tiny}\n- {name: cache, service: redis, plan: s}\n"
	ch := Apply(Desired(servicesTree(webBindsDB, decl), opts), State{}, "apps", now)
	if len(ch.Services) != 2 || ch.Services[1].Decl.Name != "db" || ch.Services[1].State != model.ServicePending || ch.Services[1].GUID == "" ||
		ch.Services[0].GUID == ch.Services[1].GUID {
		t.Fatalf("new services %+v", ch.Services)
	}
	ready := map[model.ServiceKey]model.ServiceInstance{}
	for _, s := range ch.Services {
		applied := s.Decl
		s.Applied, s.State = &applied, model.ServiceReady
		ready[s.Key()] = s
	}
	st := State{Services: ready}
	if again := Apply(Desired(servicesTree(webBindsDB, decl), opts), st, "apps", now); len(again.Services) != 0 {
		t.Fatalf("unchanged services written again: %+v", again.Services)
	}
	opts.Commit = "c2"
	ch = Apply(Desired(servicesTree(webBindsDB, "services:\n- {name: db, service: postgresql, plan: big}\n"), opts), st, "apps", now)
	if len(ch.Services) != 2 {
		t.Fatalf("changes %+v", ch.Services)
	}
	cache, db := ch.Services[0], ch.Services[1]
	if !cache.Deleted || cache.GUID != ready[cache.Key()].GUID {
		t.Errorf("the undeclared service %+v, want marked deleted", cache)
	}
	if db.State != model.ServicePending || db.GUID != ready[db.Key()].GUID || db.Applied == nil || db.Applied.Plan != "small" || db.Decl.Plan != "big" {
		t.Errorf("the changed service %+v", db)
	}

	pv := ForPreview(Desired(servicesTree(webBindsDB, decl), Options{Source: "apps#pr-4", Space: "dev-pr-4", Commit: "p1", Domain: "apps.localhost", Preview: true}), Preview{Number: 4})
	for _, s := range pv.Services {
		if s.Decl.Name == "db" && (s.Decl.Plan != "tiny" || s.Space != "dev-pr-4") {
			t.Errorf("the preview's db %+v, want its own on plan tiny", s)
		}
	}
}

// TestPolicyInputServices: the policies see the proposal's service
// instances and those other sources declare in the space (not deleted
// ones, not other spaces'), and each app's bound services.
func TestPolicyInputServices(t *testing.T) {
	opts := Options{Source: "apps", Space: "dev", Commit: "c1", Domain: "apps.localhost"}
	prop := Desired(servicesTree(webBindsDB, "services:\n- {name: db, service: postgresql, plan: small}\n"), opts)
	st := State{Services: map[model.ServiceKey]model.ServiceInstance{
		{Space: "dev", Name: "cache"}:   {Space: "dev", Source: "infra", Decl: model.ServiceDecl{Name: "cache", Service: "redis", Plan: "s"}},
		{Space: "dev", Name: "old"}:     {Space: "dev", Source: "infra", Deleted: true, Decl: model.ServiceDecl{Name: "old"}},
		{Space: "prod", Name: "db"}:     {Space: "prod", Source: "prod", Decl: model.ServiceDecl{Name: "db"}},
		{Space: "dev", Name: "db-mine"}: {Space: "dev", Source: "apps", Decl: model.ServiceDecl{Name: "db-mine"}},
	}}
	in := PolicyInput(Scope{Space: "dev", Source: "apps"}, prop, st)
	var names []string
	for _, s := range in.Services {
		names = append(names, s.Name+":"+s.Plan)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"cache:s", "db:small"}) {
		t.Fatalf("services %v", names)
	}
	if len(in.Apps) != 1 || !slices.Equal(in.Apps[0].Services, []string{"db"}) {
		t.Fatalf("apps %+v", in.Apps)
	}
}
