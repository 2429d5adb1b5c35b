package decide

import (
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
)

// Scope says whose commit the policies judge: the space the source deploys
// to, its organisation ("" for none), the source's name, and the
// organisation of any other source (for org quotas; nil when none).
type Scope struct {
	Space, Org, Source string
	OrgOf              func(source string) string
}

// PolicyInput is what the policies judge for a proposal: the space's apps
// as they would be if it applied (the proposal's, plus those other sources
// declare in the space), what the space runs now (Usage), and the apps of
// the organisation's other spaces. `driftless policy eval` builds its
// input here too, with an empty State, so it decides as the platform does.
func PolicyInput(sc Scope, prop Proposal, st State) policies.Input {
	in := policies.Input{Space: sc.Space, Org: sc.Org}
	rels := make(map[string]model.Release, len(prop.Releases))
	for _, r := range prop.Releases {
		rels[r.App] = r
	}
	for _, a := range prop.Apps {
		in.Apps = append(in.Apps, PolicyApp(a, rels[a.Name]))
	}
	for key, a := range st.Apps {
		if key.Space != sc.Space {
			if sc.Org != "" && sc.OrgOf != nil && sc.OrgOf(a.Source) == sc.Org {
				if r := st.Release(key, a.ReleaseID); r != nil {
					in.OrgApps = append(in.OrgApps, PolicyApp(a, *r))
				}
			}
			continue
		}
		if r := st.Release(key, a.CurrentID); r != nil {
			in.Usage.Apps++
			for _, t := range r.ProcessTypes() {
				run, _ := r.RunFor(t)
				in.Usage.Instances += a.InstancesOf(t)
				in.Usage.MemoryMB += int64(a.InstancesOf(t)) * run.MemoryMB
			}
		}
		if a.Source == sc.Source {
			continue
		}
		if r := st.Release(key, a.ReleaseID); r != nil {
			in.Apps = append(in.Apps, PolicyApp(a, *r))
		}
	}
	for _, s := range prop.Services {
		in.Services = append(in.Services, PolicyService(s.Decl))
	}
	for key, s := range st.Services {
		if key.Space == sc.Space && s.Source != sc.Source && !s.Deleted {
			in.Services = append(in.Services, PolicyService(s.Decl))
		}
	}
	return in
}

// PolicyService is a service instance's declaration as the policies see
// it.
func PolicyService(d model.ServiceDecl) policies.Service {
	return policies.Service{Name: d.Name, Service: d.Service, Plan: d.Plan, Broker: d.Broker, UserProvided: d.UserProvided,
		Tags: d.Tags, File: d.Pos.File, Line: d.Pos.Line}
}

// PolicyApp is an app and its release as the policies see them.
func PolicyApp(a model.App, r model.Release) policies.App {
	var services []string
	for _, s := range r.Run.Services {
		services = append(services, s.Name)
	}
	var procs []policies.Process
	for _, p := range r.Processes {
		procs = append(procs, policies.Process{Type: p.Type, Instances: a.InstancesOf(p.Type), MemoryMB: p.MemoryMB, DiskMB: p.DiskMB,
			LogRateLimit: policyLogRate(p.LogRateLimit)})
	}
	pa := policies.App{Name: a.Name, Instances: a.Instances, MemoryMB: r.Run.MemoryMB, DiskMB: r.Run.DiskMB,
		LogRateLimit: policyLogRate(r.Run.LogRateLimit),
		Routes:       a.Routes, Buildpacks: r.Buildpacks, Stack: r.Stack, Services: services, Processes: procs, File: a.File, Line: a.Line}
	if r.Docker != nil {
		pa.Docker = &policies.Docker{Image: r.Docker.Image, Username: r.Docker.Username}
	}
	return pa
}

// policyLogRate is a run spec's log rate limit as the policies see it:
// bytes per second, -1 for no limit (0 in the run spec).
func policyLogRate(b int64) int64 {
	if b <= 0 {
		return -1
	}
	return b
}

// Violations turns the policies' verdict into problems located in the
// manifests.
func Violations(vs []policies.Violation) []model.Problem {
	out := make([]model.Problem, 0, len(vs))
	for _, v := range vs {
		out = append(out, model.Problem{Position: model.Position{File: v.File, Line: v.Line}, App: v.App,
			Message: "policy " + v.Policy + ": " + v.Message, Kind: model.ProblemPolicy})
	}
	return out
}

// HoldBack returns the proposal with every app a violation names put back
// to what it runs now (an app new in the commit is left out), for per-app
// enforcement. ok is false when a violation names no app: it is about the
// space as a whole, and the whole commit is refused.
func HoldBack(prop Proposal, violations []model.Problem, st State) (Proposal, bool) {
	held := map[string]bool{}
	for _, v := range violations {
		if v.App == "" {
			return prop, false
		}
		held[v.App] = true
	}
	out := Proposal{Warnings: prop.Warnings}
	for _, r := range prop.Releases {
		if !held[r.App] {
			out.Releases = append(out.Releases, r)
		}
	}
	for _, a := range prop.Apps {
		if !held[a.Name] {
			out.Apps = append(out.Apps, a)
			continue
		}
		cur, ok := st.App(a.Key())
		if !ok {
			continue // new in this commit: not deployed until it complies
		}
		out.Apps = append(out.Apps, cur)
		if r := st.Release(cur.Key(), cur.ReleaseID); r != nil {
			out.Releases = append(out.Releases, *r)
		}
	}
	return out, true
}

// Conflicts are the apps of a proposal that another source already
// declares in the same space: an app has one source.
func Conflicts(prop Proposal, st State) []model.Problem {
	var out []model.Problem
	for _, a := range prop.Apps {
		if other, ok := st.App(a.Key()); ok && other.Source != a.Source {
			out = append(out, model.Problem{Position: model.Position{File: a.File, Line: a.Line}, App: a.Name,
				Message: "app \"" + a.Name + "\" is already declared in space \"" + a.Space + "\" by source \"" + other.Source + "\""})
		}
	}
	return out
}
