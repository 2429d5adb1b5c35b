package plan

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/driftless/driftless/model"
)

// Compute returns the actions that move actual towards desired. Calling it
// again after the actions were applied (and reported back by the cells)
// returns no actions: it is idempotent.
//
// Per app and instance index it keeps exactly one live instance of the
// app's release: a missing or crashed one is started (crashed ones are also
// cleaned up), duplicates are stopped, indexes past the desired count are
// stopped, and an instance of an older release keeps serving until its
// replacement at the same index is RUNNING — at most MaxInFlight indexes are
// being replaced at once. Instances of apps that are no longer desired are
// stopped. Instances on lost cells count as gone and get no commands.
func Compute(in Input) Plan {
	s := newState(in)
	var p Plan
	for _, app := range sortedApps(in.Apps) {
		s.planApp(app, in.Now, &p)
	}
	// Instances of apps nobody wants any more.
	for _, inst := range s.live {
		if _, wanted := s.desired[inst.ProcessKey()]; wanted {
			continue
		}
		p.Actions = append(p.Actions, stop(inst, CauseCleanup, "app is no longer in any source"))
	}
	return p
}

// state is the working copy Compute plans against: live instances by app
// and index, and what each cell has left once planned starts are counted.
type state struct {
	desired map[model.ProcessKey]bool
	// live holds the instances Compute may act on: not on a lost cell, not
	// already stopping, sorted by GUID for deterministic plans.
	live  []Instance
	byApp map[model.ProcessKey]map[int][]Instance
	// onLost marks the app indexes that had an instance on a lost cell.
	onLost   map[model.ProcessKey]map[int]bool
	cells    []*cellState
	cellByID map[string]*cellState
	// appOnCell and appInZone count the instances of the app being planned
	// per cell and per zone (by cellState.pos and .zone), for spreading.
	appOnCell []int
	appInZone []int
}

type cellState struct {
	Cell
	pos        int // index in state.cells
	zone       int // index of the zone in state.appInZone
	usedMemory int64
	usedDisk   int64
	used       int
}

func newState(in Input) *state {
	s := &state{desired: make(map[model.ProcessKey]bool, len(in.Apps)), byApp: make(map[model.ProcessKey]map[int][]Instance),
		onLost: make(map[model.ProcessKey]map[int]bool)}
	for _, a := range in.Apps {
		s.desired[a.ProcessKey()] = true
	}
	cells := make(map[string]*cellState, len(in.Cells))
	zones := make(map[string]int)
	for _, c := range in.Cells {
		cs := &cellState{Cell: c}
		cells[c.ID] = cs
		s.cells = append(s.cells, cs)
	}
	slices.SortFunc(s.cells, func(a, b *cellState) int { return cmp.Compare(a.ID, b.ID) })
	for i, c := range s.cells {
		c.pos = i
		z, ok := zones[c.Zone]
		if !ok {
			z = len(zones)
			zones[c.Zone] = z
		}
		c.zone = z
	}
	s.cellByID = cells
	s.appOnCell = make([]int, len(s.cells))
	s.appInZone = make([]int, len(zones))
	// Sorted by GUID through their positions: an Instance is large, and
	// moving 10,000 of them about was most of a plan's time.
	order := make([]int, len(in.Instances))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(in.Instances[a].GUID, in.Instances[b].GUID) })
	s.live = make([]Instance, 0, len(in.Instances))
	for _, i := range order {
		inst := &in.Instances[i]
		c, known := cells[inst.Cell]
		if !known || c.Lost {
			if known && inst.State != model.StateStopping && inst.State != model.StateStopped {
				if s.onLost[inst.ProcessKey()] == nil {
					s.onLost[inst.ProcessKey()] = make(map[int]bool)
				}
				s.onLost[inst.ProcessKey()][inst.Index] = true
			}
			continue
		}
		switch inst.State {
		case model.StateStarting, model.StateRunning, model.StateStopping:
			c.usedMemory += inst.MemoryMB
			c.usedDisk += inst.DiskMB
			c.used++
		}
		if inst.State == model.StateStopping || inst.State == model.StateStopped {
			continue
		}
		s.live = append(s.live, *inst)
		idx := s.byApp[inst.ProcessKey()]
		if idx == nil {
			idx = make(map[int][]Instance)
			s.byApp[inst.ProcessKey()] = idx
		}
		idx[inst.Index] = append(idx[inst.Index], *inst)
	}
	return s
}

func sortedApps(apps []App) []App {
	out := slices.Clone(apps)
	slices.SortFunc(out, func(a, b App) int {
		return cmp.Or(cmp.Compare(a.Space, b.Space), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Process, b.Process))
	})
	return out
}

// planApp appends the actions for one app.
func (s *state) planApp(app App, now time.Time, p *Plan) {
	byIndex := s.byApp[app.ProcessKey()]
	if app.Release == nil {
		return // nothing runnable yet: leave what runs alone
	}
	rel := app.Release
	s.countApp(byIndex)
	if rb, ok := failedRollout(app, byIndex); ok {
		p.Rollbacks = append(p.Rollbacks, rb)
		for _, group := range byIndex {
			for _, inst := range group {
				if inst.State == model.StateCrashed {
					p.Actions = append(p.Actions, stop(inst, CauseCleanup, "clean up crashed instance"))
				}
			}
		}
		return
	}
	maxInFlight := app.MaxInFlight
	if maxInFlight <= 0 {
		maxInFlight = DefaultMaxInFlight
	}
	inFlight := 0
	for idx := range app.Instances {
		cur, old, _ := split(byIndex[idx], rel.ID)
		if len(cur) > 0 && !serving(cur[0]) && hasRunning(old) {
			inFlight++
		}
	}

	indexes := make([]int, 0, len(byIndex))
	for idx := range byIndex {
		indexes = append(indexes, idx)
	}
	for idx := range app.Instances {
		if _, ok := byIndex[idx]; !ok {
			indexes = append(indexes, idx)
		}
	}
	slices.Sort(indexes)

	for _, idx := range indexes {
		group := byIndex[idx]
		if idx >= app.Instances {
			for _, inst := range group {
				p.Actions = append(p.Actions, stop(inst, CauseCleanup, fmt.Sprintf("scaled down to %d instances", app.Instances)))
			}
			continue
		}
		cur, old, crashed := split(group, rel.ID)
		for _, inst := range crashed {
			p.Actions = append(p.Actions, stop(inst, CauseCleanup, "clean up crashed instance"))
		}
		// Keep the best instance of the release, stop duplicates.
		for _, dup := range cur[min(1, len(cur)):] {
			p.Actions = append(p.Actions, stop(dup, CauseCleanup, "duplicate instance"))
		}
		switch {
		case len(cur) > 0 && serving(cur[0]):
			for _, o := range old {
				p.Actions = append(p.Actions, stop(o, CauseRollout, "replaced by release "+rel.ID))
			}
		case len(cur) > 0:
			// The new instance is starting (or running but not ready):
			// old ones that serve stay, old ones that do not serve yet
			// are pointless.
			for _, o := range old {
				if o.State != model.StateRunning {
					p.Actions = append(p.Actions, stop(o, CauseRollout, "replaced by release "+rel.ID))
				}
			}
		default:
			if until, ok := app.RestartAt[idx]; ok && until.After(now) {
				p.Waiting = append(p.Waiting, Waiting{App: app.Key(), Process: app.Process, Index: idx, Until: until})
				if p.NextCheck.IsZero() || until.Before(p.NextCheck) {
					p.NextCheck = until
				}
				continue // crash backoff
			}
			cause, reason := CausePlace, "instance missing"
			switch {
			case hasRunning(old):
				if inFlight >= maxInFlight {
					continue // rollout: wait for the instances in flight
				}
				inFlight++
				cause, reason = CauseRollout, "rolling out release "+rel.ID
			case len(crashed) > 0 || app.RestartAt[idx] != (time.Time{}):
				cause, reason = CauseRestart, "replacing crashed instance"
			case s.onLost[app.ProcessKey()][idx]:
				cause, reason = CauseEvacuate, "replacing an instance on a lost cell"
			}
			s.start(app, idx, cause, reason, p)
		}
	}
}

// failedRollout reports whether the app's rollout failed: an instance of
// the app's release crashed without ever passing its health check while an
// instance of another release still serves. The app should go back to the
// release most of the serving instances run.
func failedRollout(app App, byIndex map[int][]Instance) (Rollback, bool) {
	var failed *Instance
	serving := map[string]int{}
	for _, group := range byIndex {
		for i, inst := range group {
			switch {
			case inst.State == model.StateCrashed && inst.ReleaseID == app.Release.ID && !inst.WasHealthy:
				if failed == nil || inst.GUID < failed.GUID {
					failed = &group[i]
				}
			case inst.State == model.StateRunning && inst.ReleaseID != app.Release.ID:
				serving[inst.ReleaseID]++
			}
		}
	}
	if failed == nil || len(serving) == 0 {
		return Rollback{}, false
	}
	to, most := "", 0
	for id, n := range serving {
		if n > most || n == most && id < to {
			to, most = id, n
		}
	}
	reason := failed.Reason
	if reason == "" {
		reason = "crashed before it became healthy"
	}
	return Rollback{App: app.Key(), Release: app.Release.ID, To: to,
		Reason: fmt.Sprintf("instance %d of release %s never became healthy: %s", failed.Index, app.Release.ID, reason)}, true
}

// countApp fills appOnCell and appInZone with the live instances of one app.
func (s *state) countApp(byIndex map[int][]Instance) {
	clear(s.appOnCell)
	clear(s.appInZone)
	for _, group := range byIndex {
		for _, inst := range group {
			if c := s.cellByID[inst.Cell]; c != nil {
				s.appOnCell[c.pos]++
				s.appInZone[c.zone]++
			}
		}
	}
}

// split sorts an index's instances into those of release id that are live
// (best first: RUNNING before STARTING, then oldest), those of other
// releases that are live, and crashed ones.
func split(group []Instance, id string) (cur, old, crashed []Instance) {
	for _, inst := range group {
		switch {
		case inst.State == model.StateCrashed:
			crashed = append(crashed, inst)
		case inst.ReleaseID == id:
			cur = append(cur, inst)
		default:
			old = append(old, inst)
		}
	}
	slices.SortStableFunc(cur, func(a, b Instance) int {
		return cmp.Or(
			cmp.Compare(rank(a), rank(b)),
			a.Since.Compare(b.Since),
			cmp.Compare(a.GUID, b.GUID))
	})
	return cur, old, crashed
}

// rank orders an index's instances of one release, best first: serving,
// then running but not ready, then starting.
func rank(inst Instance) int {
	switch {
	case serving(inst):
		return 0
	case inst.State == model.StateRunning:
		return 1
	}
	return 2
}

// serving reports whether an instance takes traffic: RUNNING and not
// failing its readiness check. A rollout replaces an old instance only
// once its successor serves.
func serving(inst Instance) bool { return inst.State == model.StateRunning && !inst.NotReady }

func hasRunning(insts []Instance) bool {
	return slices.ContainsFunc(insts, func(i Instance) bool { return i.State == model.StateRunning })
}

func stop(inst Instance, cause Cause, reason string) Action {
	return Action{Kind: Stop, Cell: inst.Cell, Instance: inst.InstanceRef, Cause: cause, Reason: reason}
}

// start places a new instance of app at idx, or records why it cannot.
func (s *state) start(app App, idx int, cause Cause, reason string, p *Plan) {
	run := app.Release.Run
	cell, why := s.place(model.Resources{MemoryMB: run.MemoryMB, DiskMB: run.DiskMB})
	if cell == nil {
		p.Unplaced = append(p.Unplaced, Unplaced{App: app.Key(), Process: app.Process, Index: idx, Reason: why})
		return
	}
	cell.usedMemory += run.MemoryMB
	cell.usedDisk += run.DiskMB
	cell.used++
	s.appOnCell[cell.pos]++
	s.appInZone[cell.zone]++
	p.Actions = append(p.Actions, Action{
		Kind: Start,
		Cell: cell.ID,
		Instance: model.InstanceRef{Space: app.Space, App: app.Name, Index: idx,
			ReleaseID: app.Release.ID, Commit: app.Release.Commit, Process: model.ProcessRef(app.Process)},
		Run:    &run,
		Cause:  cause,
		Reason: reason,
	})
}
