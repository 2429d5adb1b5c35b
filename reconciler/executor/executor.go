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

// Requester sends one request and decodes its reply: the executor's only
// side effect. NATS is the implementation used by the controller; unit
// tests use a fake.
type Requester interface {
	// Request sends req on subject and decodes the reply into resp. It
	// gives up when ctx ends or after timeout, whichever comes first.
	Request(ctx context.Context, subject string, req, resp any, timeout time.Duration) error
}

// NATS is a Requester sending JSON requests on a NATS connection
// (bus.Request).
func NATS(nc *nats.Conn) Requester { return natsRequester{nc: nc} }

type natsRequester struct{ nc *nats.Conn }

func (n natsRequester) Request(ctx context.Context, subject string, req, resp any, timeout time.Duration) error {
	return bus.Request(ctx, n.nc, subject, req, resp, timeout)
}

// Executor sends actions to cells.
type Executor struct {
	req Requester
	// Timeout bounds each request; cells reply as soon as they accepted
	// a command, before the work is done.
	Timeout time.Duration
	// Parallel bounds how many requests are in flight at once.
	Parallel int
}

// New returns an executor sending on nc.
func New(nc *nats.Conn) *Executor {
	return NewWith(NATS(nc))
}

// NewWith returns an executor sending its requests through r, with the
// same Timeout and Parallel defaults as New.
func NewWith(r Requester) *Executor {
	return &Executor{req: r, Timeout: 5 * time.Second, Parallel: 16}
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
		err = e.req.Request(ctx, bus.CellCommand(a.Cell, bus.VerbStart),
			bus.StartInstance{Instance: a.Instance, Run: *a.Run}, &reply, e.Timeout)
	case plan.Stop:
		err = e.req.Request(ctx, bus.CellCommand(a.Cell, bus.VerbStop),
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
