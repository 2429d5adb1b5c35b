package decide

import (
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/plan"
)

var hello = model.AppKey{Space: "dev", Name: "hello"}

func state(apps []model.App, rels ...model.Release) State {
	st := State{Apps: map[model.AppKey]model.App{}, Releases: map[model.AppKey]map[string]model.Release{}}
	for _, a := range apps {
		st.Apps[a.Key()] = a
	}
	for _, r := range rels {
		if st.Releases[r.Key()] == nil {
			st.Releases[r.Key()] = map[string]model.Release{}
		}
		st.Releases[r.Key()][r.ID] = r
	}
	return st
}

func staged(id string) model.Release {
	return model.Release{ID: id, Space: "dev", App: "hello", State: model.ReleaseStaged, DropletDigest: "sha256:" + id}
}

func TestApply(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	prop := func(release string) Proposal {
		return Proposal{
			Apps:     []model.App{{Space: "dev", Name: "hello", Source: "apps", Instances: 2, ReleaseID: release}},
			Releases: []model.Release{{ID: release, Space: "dev", App: "hello", State: model.ReleaseStaging}},
		}
	}
	other := model.App{Space: "dev", Name: "gone", Source: "apps"}
	foreign := model.App{Space: "dev", Name: "theirs", Source: "elsewhere"}
	tests := []struct {
		name               string
		prop               Proposal
		st                 State
		newReleases, stage int
		current, previous  string
		promoted, removed  int
	}{
		{"first commit: release created and staged", prop("r1"), state(nil), 1, 1, "", "", 0, 0},
		{"same release already staging: not created again", prop("r1"),
			state([]model.App{{Space: "dev", Name: "hello", ReleaseID: "r1"}}, model.Release{ID: "r1", Space: "dev", App: "hello", State: model.ReleaseStaging}), 0, 1, "", "", 0, 0},
		{"release staged before (a revert): promoted at once", prop("r1"),
			state([]model.App{{Space: "dev", Name: "hello", ReleaseID: "r2", CurrentID: "r2"}}, staged("r1"), staged("r2")), 0, 0, "r1", "r2", 1, 0},
		{"failed release is not staged again", prop("r1"),
			state(nil, model.Release{ID: "r1", Space: "dev", App: "hello", State: model.ReleaseFailed}), 0, 0, "", "", 0, 0},
		{"apps the source no longer declares are removed, others' kept", prop("r1"),
			state([]model.App{other, foreign}), 1, 1, "", "", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := Apply(tt.prop, tt.st, "apps", now)
			if len(ch.Releases) != tt.newReleases || len(ch.Stage) != tt.stage || len(ch.Promoted) != tt.promoted || len(ch.Removed) != tt.removed {
				t.Fatalf("changes %+v", ch)
			}
			if len(ch.Apps) != 1 || ch.Apps[0].CurrentID != tt.current || ch.Apps[0].PreviousID != tt.previous || !ch.Apps[0].UpdatedAt.Equal(now) {
				t.Errorf("app %+v, want current %q previous %q", ch.Apps, tt.current, tt.previous)
			}
			for _, r := range ch.Releases {
				if !r.CreatedAt.Equal(now) {
					t.Errorf("new release %s created at %v", r.ID, r.CreatedAt)
				}
			}
			if tt.removed == 1 && ch.Removed[0] != other.Key() {
				t.Errorf("removed %v, want %v", ch.Removed, other.Key())
			}
		})
	}
}

func TestRollback(t *testing.T) {
	app := model.App{Space: "dev", Name: "hello", ReleaseID: "r3", CurrentID: "r3", PreviousID: "r2"}
	rb := plan.Rollback{App: hello, Release: "r3", To: "r1", Reason: "crashed"}
	tests := []struct {
		name   string
		st     State
		ok     bool
		to     string
		reason string
	}{
		{"back to what still serves", state([]model.App{app}, staged("r1"), staged("r2"), staged("r3")), true, "r1", ""},
		{"what serves is not staged: the previous release", state([]model.App{app}, staged("r2"), staged("r3")), true, "r2", ""},
		{"nowhere to go", state([]model.App{app}, staged("r3")), false, "", "no staged release to go back to"},
		{"the app moved on", state([]model.App{{Space: "dev", Name: "hello", CurrentID: "r4"}}, staged("r1")), false, "", NothingToUndo},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok, reason := Rollback(rb, tt.st)
			if ok != tt.ok || reason != tt.reason {
				t.Fatalf("ok %v reason %q, want %v %q", ok, reason, tt.ok, tt.reason)
			}
			if !ok {
				return
			}
			if u.App.CurrentID != tt.to || u.App.PreviousID != "" || u.Failed == nil || u.Failed.State != model.ReleaseFailed {
				t.Errorf("undo %+v", u)
			}
			if tt.st.Release(hello, "r3").State != model.ReleaseStaged {
				t.Error("Rollback changed the state it was given")
			}
		})
	}
}

func TestHoldBackAndConflicts(t *testing.T) {
	running := model.App{Space: "dev", Name: "hello", Source: "apps", Instances: 1, ReleaseID: "r1", CurrentID: "r1"}
	st := state([]model.App{running, {Space: "dev", Name: "taken", Source: "other"}}, staged("r1"))
	prop := Proposal{
		Apps: []model.App{{Space: "dev", Name: "hello", Source: "apps", Instances: 9, ReleaseID: "r2"},
			{Space: "dev", Name: "new", Source: "apps"}, {Space: "dev", Name: "fine", Source: "apps"}},
		Releases: []model.Release{{ID: "r2", App: "hello"}, {ID: "n1", App: "new"}, {ID: "f1", App: "fine"}},
	}
	got, ok := HoldBack(prop, []model.Problem{{App: "hello"}, {App: "new"}}, st)
	if !ok || len(got.Apps) != 2 || got.Apps[0].ReleaseID != "r1" || got.Apps[0].Instances != 1 || got.Apps[1].Name != "fine" {
		t.Errorf("held back: %+v (%v)", got.Apps, ok)
	}
	if _, ok := HoldBack(prop, []model.Problem{{Message: "space over quota"}}, st); ok {
		t.Error("a violation about the whole space held back only apps")
	}
	prop.Apps = append(prop.Apps, model.App{Space: "dev", Name: "taken", Source: "apps", File: "m.yml", Line: 3})
	if cs := Conflicts(prop, st); len(cs) != 1 || cs[0].App != "taken" || cs[0].Line != 3 {
		t.Errorf("conflicts %+v", cs)
	}
}

func TestPolicyInput(t *testing.T) {
	st := state([]model.App{
		{Space: "dev", Name: "hello", Source: "apps", Instances: 2, ReleaseID: "r1", CurrentID: "r1"},
		{Space: "dev", Name: "web", Source: "web", Instances: 3, ReleaseID: "w1", CurrentID: "w1"},
		{Space: "prod", Name: "api", Source: "prod", Instances: 4, ReleaseID: "a1"},
		{Space: "lab", Name: "x", Source: "lab", Instances: 1, ReleaseID: "x1"},
	}, model.Release{ID: "r1", Space: "dev", App: "hello", Run: model.RunSpec{MemoryMB: 64}},
		model.Release{ID: "w1", Space: "dev", App: "web", Run: model.RunSpec{MemoryMB: 128}},
		model.Release{ID: "a1", Space: "prod", App: "api", Run: model.RunSpec{MemoryMB: 256}},
		model.Release{ID: "x1", Space: "lab", App: "x"})
	prop := Proposal{Apps: []model.App{{Space: "dev", Name: "hello", Source: "apps", Instances: 5, ReleaseID: "r2"}},
		Releases: []model.Release{{ID: "r2", App: "hello", Run: model.RunSpec{MemoryMB: 64}}}}
	orgs := map[string]string{"apps": "acme", "web": "acme", "prod": "acme", "lab": "other"}
	in := PolicyInput(Scope{Space: "dev", Org: "acme", Source: "apps", OrgOf: func(s string) string { return orgs[s] }}, prop, st)
	if len(in.Apps) != 2 || in.Apps[0].Name != "hello" || in.Apps[0].Instances != 5 || in.Apps[1].Name != "web" {
		t.Errorf("apps %+v: want the commit's hello and the other source's web", in.Apps)
	}
	if in.Usage.Apps != 2 || in.Usage.Instances != 5 || in.Usage.MemoryMB != 2*64+3*128 {
		t.Errorf("usage %+v", in.Usage)
	}
	if len(in.OrgApps) != 1 || in.OrgApps[0].Name != "api" {
		t.Errorf("org apps %+v: want prod's api only", in.OrgApps)
	}
}
