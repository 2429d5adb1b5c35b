package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
)

func TestPreviewViews(t *testing.T) {
	preview := func(seen, applied string, errs ...string) reconciler.PreviewState {
		st := model.SourceStatus{Name: "apps#pr-7", Space: "dev-pr-7", LastSeen: seen, LastApplied: applied}
		for _, e := range errs {
			st.Errors = append(st.Errors, model.Problem{Position: model.Position{File: "m.yml", Line: 3}, Message: e})
		}
		st.Preview = &model.PreviewOf{Source: "apps", Number: 7, Branch: "feature", Author: "ada"}
		return reconciler.PreviewState{Status: st}
	}
	app := func(space, state string, problems ...string) App {
		return App{Name: "hello", Space: space, State: state, Routes: []string{"hello-pr-7.apps.localhost"}, Problems: problems}
	}
	tests := []struct {
		name   string
		ps     reconciler.PreviewState
		apps   []App
		state  string
		reason string
	}{
		{"every app runs", preview("c2", "c2"), []App{app("dev-pr-7", AppRunning), app("dev", AppDegraded)}, PreviewServing, ""},
		{"an app still starts", preview("c2", "c2"), []App{app("dev-pr-7", AppStarting)}, PreviewStarting, ""},
		{"last commit refused", preview("c3", "c2", "instances is not a number"), []App{app("dev-pr-7", AppRunning)}, PreviewRefused, "m.yml:3: instances is not a number"},
		{"staging failed", preview("c2", "c2"), []App{app("dev-pr-7", AppStagingFailed, "release r (commit c2) failed to stage: no buildpack")}, PreviewFailed, "release r (commit c2) failed to stage: no buildpack"},
		{"nothing stored yet", preview("c1", ""), nil, PreviewStarting, ""},
		{"asleep", reconciler.PreviewState{Status: preview("c2", "c2").Status, Sleeping: true}, []App{app("dev-pr-7", AppStarting)}, PreviewSleeping, "idle: its next request wakes it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := previewViews([]reconciler.PreviewState{tt.ps}, tt.apps)
			if len(vs) != 1 {
				t.Fatalf("%d views", len(vs))
			}
			v := vs[0]
			if v.State != tt.state || v.Reason != tt.reason {
				t.Errorf("state %q reason %q, want %q %q", v.State, v.Reason, tt.state, tt.reason)
			}
			if v.Source != "apps" || v.Number != 7 || v.Space != "dev-pr-7" || v.Head != tt.ps.Status.LastSeen {
				t.Errorf("view %+v", v)
			}
			if wantURLs := len(tt.apps) > 0; (len(v.URLs) > 0) != wantURLs || wantURLs && v.URLs[0] != "http://hello-pr-7.apps.localhost" {
				t.Errorf("urls %v", v.URLs)
			}
		})
	}
}

func TestPreviewsRoute(t *testing.T) {
	b := &fakeBackend{previews: []reconciler.PreviewState{{Status: model.SourceStatus{Name: "apps#pr-1", Space: "dev-pr-1", Preview: &model.PreviewOf{Number: 1}}}}}
	rec := httptest.NewRecorder()
	testHandler(ServerConfig{Backend: b}).ServeHTTP(rec, httptest.NewRequest("GET", "/v1/previews", nil))
	var got []Preview
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || len(got) != 1 || got[0].Name != "apps#pr-1" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// TestAppViewStates: the app's state from what is stored and what runs,
// sleeping included.
func TestAppViewStates(t *testing.T) {
	rel := model.Release{ID: "r1", Space: "dev-pr-7", App: "hello", State: model.ReleaseStaged, DropletDigest: "sha256:x"}
	app := model.App{Space: "dev-pr-7", Name: "hello", Instances: 1, ReleaseID: "r1", CurrentID: "r1"}
	running := model.InstanceStatus{InstanceRef: model.InstanceRef{GUID: "g", Space: "dev-pr-7", App: "hello", ReleaseID: "r1"}, State: model.StateRunning}
	starting := running
	starting.State = model.StateStarting
	asleep := &model.Sleeping{Space: "dev-pr-7", App: "hello"}
	tests := []struct {
		name  string
		insts []model.InstanceStatus
		sleep *model.Sleeping
		want  string
	}{
		{"running", []model.InstanceStatus{running}, nil, AppRunning},
		{"nothing runs", nil, nil, AppDegraded},
		{"asleep", nil, asleep, AppSleeping},
		{"waking", []model.InstanceStatus{starting}, asleep, AppStarting},
		{"awake, the record not yet gone", []model.InstanceStatus{running}, asleep, AppRunning},
	}
	for _, tt := range tests {
		s := reconciler.AppState{App: app, Releases: []model.Release{rel}, Instances: tt.insts, Sleeping: tt.sleep}
		if got := appView(s, time.Now()).State; got != tt.want {
			t.Errorf("%s: state %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestSettled: `sync --wait` waits for apps that will run by themselves,
// not for failed stagings nor sleeping previews.
func TestSettled(t *testing.T) {
	tests := []struct {
		name string
		apps []App
		want bool
	}{
		{"all running", []App{{State: AppRunning}}, true},
		{"one starting", []App{{State: AppRunning}, {State: AppStarting}}, false},
		{"staging failed", []App{{State: AppStagingFailed}}, true},
		{"asleep", []App{{State: AppRunning}, {State: AppSleeping}}, true},
		{"asleep with a new release to roll", []App{{State: AppSleeping, Target: "r2"}}, false},
	}
	for _, tt := range tests {
		if got, _ := settled(tt.apps); got != tt.want {
			t.Errorf("%s: settled %v, want %v", tt.name, got, tt.want)
		}
	}
}
