package reconciler

import (
	"sync"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler/plan"
)

// crashKey is one instance index of one app: crash counts belong to the
// index, not to an instance, since every restart is a new instance.
type crashKey struct {
	app   model.ProcessKey
	index int
}

// crashTracker counts crashes per instance index and decides, with a
// plan.CrashPolicy, when a crashed index may start again. It learns about
// crashes from the CRASHED instances it sees in the actual state, each
// instance counted once however many reports mention it.
type crashTracker struct {
	mu      sync.Mutex
	policy  plan.CrashPolicy
	records map[crashKey]*model.CrashRecord
	// counted holds the GUIDs of crashed instances already counted, with
	// when they were last reported: a crashed instance is reported until
	// its cell has removed it, and longer by a late heartbeat.
	counted map[string]time.Time
}

// countedMemory is how long a counted crash is remembered after its last
// report.
const countedMemory = 10 * time.Minute

func newCrashTracker(p plan.CrashPolicy) *crashTracker {
	return &crashTracker{policy: p.WithDefaults(), records: make(map[crashKey]*model.CrashRecord), counted: make(map[string]time.Time)}
}

// Crash is a newly counted crash.
type Crash struct {
	Instance model.InstanceStatus
	Cell     string
	Record   model.CrashRecord
	// Delay is how long the restart waits (0: at once).
	Delay time.Duration
}

// Observe counts the crashed instances not seen before and clears the
// history of indexes whose instance has been RUNNING for the policy's
// ResetAfter. It returns the new crashes.
func (t *crashTracker) Observe(insts []plan.Instance, now time.Time) []Crash {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Crash
	for _, in := range insts {
		key := crashKey{in.ProcessKey(), in.Index}
		switch in.State {
		case model.StateCrashed:
			_, seen := t.counted[in.GUID]
			t.counted[in.GUID] = now
			if seen {
				continue
			}
			r := t.records[key]
			if r == nil {
				r = &model.CrashRecord{}
				t.records[key] = r
			}
			r.Count++
			r.LastAt, r.ExitStatus, r.Reason, r.LastOutput = now, in.ExitStatus, in.Reason, in.LastOutput
			delay := t.policy.Delay(r.Count)
			r.RestartAt = now.Add(delay)
			out = append(out, Crash{Instance: in, Cell: in.Cell, Record: *r, Delay: delay})
		case model.StateRunning:
			if r := t.records[key]; r != nil && !in.Since.IsZero() && in.Since.After(r.LastAt) && now.Sub(in.Since) >= t.policy.ResetAfter {
				delete(t.records, key)
			}
		}
	}
	for guid, last := range t.counted {
		if now.Sub(last) > countedMemory {
			delete(t.counted, guid)
		}
	}
	return out
}

// RestartAt returns, per index of the app's process type that crashed
// recently, when it may start again (in the past once its backoff is
// over).
func (t *crashTracker) RestartAt(pk model.ProcessKey) map[int]time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[int]time.Time
	for k, r := range t.records {
		if k.app == pk {
			if out == nil {
				out = make(map[int]time.Time)
			}
			out[k.index] = r.RestartAt
		}
	}
	return out
}

// Records returns the crash history of every index of every process type
// of app.
func (t *crashTracker) Records(app model.AppKey) map[model.IndexKey]model.CrashRecord {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[model.IndexKey]model.CrashRecord)
	for k, r := range t.records {
		if k.app.AppKey == app {
			out[model.IndexKey{Process: model.ProcessRef(k.app.Process), Index: k.index}] = *r
		}
	}
	return out
}

// Forget drops the history of every process type of an app (removed, or
// moved to a new release).
func (t *crashTracker) Forget(app model.AppKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.records {
		if k.app.AppKey == app {
			delete(t.records, k)
		}
	}
}
