// Package executor carries out plan actions: each is a request to one
// cell over NATS (bus.CellCommand), answered by agents/commands.go.
// The planner decides, the executor acts.
package executor

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/reconciler/plan"
)

// Result is the outcome of one action. For a Start, Action.Instance.GUID
// holds the name given to the new instance.
type Result struct {
	Action plan.Action
	Reply  bus.Reply
	Err    error
}

// Executor sends actions to cells.
type Executor struct {
	nc *nats.Conn
	// Timeout bounds each request; cells reply as soon as they accepted
	// a command, before the work is done.
	Timeout time.Duration
	// Parallel bounds how many requests are in flight at once.
	Parallel int
}

// New returns an executor sending on nc.
func New(nc *nats.Conn) *Executor {
	return &Executor{nc: nc, Timeout: 5 * time.Second, Parallel: 16}
}

// Apply sends every action and returns one result per action, in order.
func (e *Executor) Apply(ctx context.Context, actions []plan.Action) []Result {
	results := make([]Result, len(actions))
	sem := make(chan struct{}, max(e.Parallel, 1))
	var wg sync.WaitGroup
	for i, a := range actions {
		if a.Kind == plan.Start && a.Instance.GUID == "" {
			a.Instance.GUID = NewGUID()
		}
		results[i].Action = a
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i].Reply, results[i].Err = e.send(ctx, a)
		}()
	}
	wg.Wait()
	return results
}

func (e *Executor) send(ctx context.Context, a plan.Action) (bus.Reply, error) {
	var reply bus.Reply
	var err error
	switch a.Kind {
	case plan.Start:
		if a.Run == nil {
			return reply, fmt.Errorf("start %s/%d: no run spec", a.Instance.App, a.Instance.Index)
		}
		err = bus.Request(ctx, e.nc, bus.CellCommand(a.Cell, bus.VerbStart),
			bus.StartInstance{Instance: a.Instance, Run: *a.Run}, &reply, e.Timeout)
	case plan.Stop:
		err = bus.Request(ctx, e.nc, bus.CellCommand(a.Cell, bus.VerbStop),
			bus.StopInstance{GUID: a.Instance.GUID, Reason: a.Reason}, &reply, e.Timeout)
	default:
		return reply, fmt.Errorf("unknown action %q", a.Kind)
	}
	if err != nil {
		return reply, fmt.Errorf("%s %s/%d on cell %s: %w", a.Kind, a.Instance.App, a.Instance.Index, a.Cell, err)
	}
	if !reply.OK {
		return reply, fmt.Errorf("%s %s/%d on cell %s: cell refused: %s", a.Kind, a.Instance.App, a.Instance.Index, a.Cell, reply.Error)
	}
	return reply, nil
}

// NewGUID returns a random RFC 4122 version 4 id.
func NewGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
