package wake

import (
	"sort"
	"sync"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/router/route"
)

// Activity sums the requests each app got from the route tables' counters
// (route.Pool.Sent, counted by the proxy without locks), for the
// bus.RouterActivity messages. A table's counts are drained when it is
// replaced and once more at the next Collect, for the requests that were
// routed by it just before.
type Activity struct {
	mu        sync.Mutex
	cur, prev *route.Table
	sum       map[model.AppKey]int64
}

// NewActivity returns an empty Activity.
func NewActivity() *Activity { return &Activity{sum: map[model.AppKey]int64{}} }

// Updated takes the table the registry swapped in.
func (a *Activity) Updated(t *route.Table) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prev.Drain(a.add)
	a.prev, a.cur = a.cur, t
}

// add counts n requests to e's app. Caller holds a.mu.
func (a *Activity) add(e route.Endpoint, n int64) {
	a.sum[model.AppKey{Space: e.Space, Name: e.App}] += n
}

// Collect returns the apps that got requests since the last Collect and
// how many, sorted by space and app (none when idle).
func (a *Activity) Collect() []bus.AppRequests {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prev.Drain(a.add)
	a.cur.Drain(a.add)
	a.prev = nil
	if len(a.sum) == 0 {
		return nil
	}
	out := make([]bus.AppRequests, 0, len(a.sum))
	for k, n := range a.sum {
		out = append(out, bus.AppRequests{Space: k.Space, App: k.Name, Requests: n})
	}
	clear(a.sum)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Space != out[j].Space {
			return out[i].Space < out[j].Space
		}
		return out[i].App < out[j].App
	})
	return out
}
