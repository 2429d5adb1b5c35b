package decide

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/driftless/driftless/model"
)

// Service instances are declared in git (services.yml) and applied with
// the commit that declares them, like apps: ServiceProblems refuses a
// commit whose bindings name an instance nobody declares, that declares an
// instance another source of the space declares, or that removes one an
// app still binds; applyServices stores what the commit declares and
// marks for deletion what it no longer does. The controller's service
// converger (reconciler/services.go) then asks the brokers.

// ServiceProblems checks the service instances and bindings of a proposal
// of source for space against what is stored.
func ServiceProblems(prop Proposal, st State, source, space string) []model.Problem {
	var problems []model.Problem
	declared := map[string]string{} // name → declaring source
	for _, s := range prop.Services {
		declared[s.Decl.Name] = source
	}
	for key, s := range st.Services {
		if key.Space != space || s.Deleted || s.Source == source {
			continue
		}
		if _, mine := declared[key.Name]; mine {
			pos := serviceDeclPos(prop, key.Name)
			problems = append(problems, model.Problem{Position: pos, Severity: model.Error,
				Message: fmt.Sprintf("service %q is already declared in space %s by source %s (%s)", key.Name, space, s.Source, s.Decl.Pos)})
			continue
		}
		declared[key.Name] = s.Source
	}
	for _, r := range prop.Releases {
		for _, b := range r.Run.Services {
			if _, ok := declared[b.Name]; !ok {
				problems = append(problems, model.Problem{Position: appPos(prop, r.App), Severity: model.Error, App: r.App,
					Message: fmt.Sprintf("app %q binds service %q, which no %s of space %s declares", r.App, b.Name, model.ServicesFile, space)})
			}
		}
	}
	// A service this source stops declaring must not be bound by an app
	// of another source of the space (this source's apps were checked
	// above).
	for key, s := range st.Services {
		if key.Space != space || s.Deleted || s.Source != source {
			continue
		}
		if _, still := declared[key.Name]; still {
			continue
		}
		for akey, a := range st.Apps {
			if akey.Space != space || a.Source == source {
				continue
			}
			if rel := st.Release(akey, a.ReleaseID); rel != nil && slices.ContainsFunc(rel.Run.Services, func(b model.AppService) bool { return b.Name == key.Name }) {
				problems = append(problems, model.Problem{Position: s.Decl.Pos, Severity: model.Error,
					Message: fmt.Sprintf("service %q is no longer declared, but app %q of source %s (%s:%d) still binds it: unbind it there first", key.Name, a.Name, a.Source, a.File, a.Line)})
			}
		}
	}
	return problems
}

// applyServices adds to ch what a proposal of source changes in the
// stored service instances: each one it declares is stored (a new one
// with its own GUID, pending; a changed one pending again, keeping its
// GUID and what the broker holds), and those of source it no longer
// declares are marked deleted.
func applyServices(ch *Changes, prop Proposal, st State, source string, now time.Time) {
	seen := map[model.ServiceKey]bool{}
	for _, s := range prop.Services {
		key := s.Key()
		seen[key] = true
		rec := s
		rec.UpdatedAt = now
		prev, ok := st.Services[key]
		if !ok {
			rec.GUID, rec.State = ServiceGUID(key, s.Commit), model.ServicePending
			ch.Services = append(ch.Services, rec)
			continue
		}
		rec.GUID, rec.Applied, rec.State, rec.Operation, rec.Message = prev.GUID, prev.Applied, prev.State, prev.Operation, prev.Message
		rec.Broker, rec.ServiceID, rec.PlanID = prev.Broker, prev.ServiceID, prev.PlanID
		if (rec.Applied == nil || !model.SameService(*rec.Applied, rec.Decl) || prev.Deleted) && !busy(prev.State) {
			rec.State = model.ServicePending
		}
		if prev.Deleted || rec.Commit != prev.Commit || !model.SameService(prev.Decl, rec.Decl) || !slices.Equal(prev.Decl.Tags, rec.Decl.Tags) ||
			prev.Decl.PreviewPlan != rec.Decl.PreviewPlan || prev.Decl.Rotation != rec.Decl.Rotation || prev.Decl.RotateEvery != rec.Decl.RotateEvery {
			ch.Services = append(ch.Services, rec)
		}
	}
	for key, s := range st.Services {
		if s.Source == source && !seen[key] && !s.Deleted {
			s.Deleted, s.UpdatedAt = true, now
			if !busy(s.State) {
				s.State = model.ServicePending
			}
			ch.Services = append(ch.Services, s)
		}
	}
	slices.SortFunc(ch.Services, func(a, b model.ServiceInstance) int {
		if a.Space != b.Space {
			return strings.Compare(a.Space, b.Space)
		}
		return strings.Compare(a.Decl.Name, b.Decl.Name)
	})
}

// busy reports whether the broker is working on an instance: its state
// is left to the converger.
func busy(s model.ServiceState) bool {
	return s == model.ServiceCreating || s == model.ServiceUpdating || s == model.ServiceDeleting
}

// ServiceGUID is the id a new service instance is given at the broker:
// derived from its key and the commit that declared it (a name declared
// again after its deletion gets a new one), shaped as a UUID.
func ServiceGUID(key model.ServiceKey, commit string) string {
	sum := sha256.Sum256([]byte(key.Space + "\x00" + key.Name + "\x00" + commit))
	h := hex.EncodeToString(sum[:16])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func serviceDeclPos(prop Proposal, name string) model.Position {
	for _, s := range prop.Services {
		if s.Decl.Name == name {
			return s.Decl.Pos
		}
	}
	return model.Position{}
}

func appPos(prop Proposal, name string) model.Position {
	for _, a := range prop.Apps {
		if a.Name == name {
			return model.Position{File: a.File, Line: a.Line}
		}
	}
	return model.Position{}
}
