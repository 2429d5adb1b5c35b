package osb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// maxPollFailures is how many polls in a row may fail transiently (no
// answer, a 5xx) before Wait gives up.
const maxPollFailures = 5

// LastOperation polls an instance's asynchronous operation (GET
// /v2/service_instances/:instance_id/last_operation). It returns the broker's
// answer and its Retry-After (0 when absent). A 410 Gone matches [ErrGone]: a
// deprovision is then done.
func (c *Client) LastOperation(ctx context.Context, instanceID string, ref PlanRef, operation string) (LastOperation, time.Duration, error) {
	op := "poll last operation of instance " + instanceID
	if err := c.needIDs(op, instanceID); err != nil {
		return LastOperation{}, 0, err
	}
	return c.lastOperation(ctx, op, instancePath(instanceID)+"/last_operation", ref, operation, true)
}

// BindingLastOperation polls a binding's asynchronous operation (GET
// /v2/service_instances/:instance_id/service_bindings/:binding_id/last_operation).
// It returns the broker's answer and its Retry-After (0 when absent). A 410
// Gone matches [ErrGone]: an unbind is then done.
func (c *Client) BindingLastOperation(ctx context.Context, instanceID, bindingID string, ref PlanRef, operation string) (LastOperation, time.Duration, error) {
	op := "poll last operation of instance " + instanceID + " binding " + bindingID
	if err := c.needIDs(op, instanceID, bindingID); err != nil {
		return LastOperation{}, 0, err
	}
	return c.lastOperation(ctx, op, bindingPath(instanceID, bindingID)+"/last_operation", ref, operation, true)
}

func (c *Client) lastOperation(ctx context.Context, op, path string, ref PlanRef, operation string, identity bool) (LastOperation, time.Duration, error) {
	q := ref.query()
	if operation != "" {
		q.Set("operation", operation)
	}
	r, err := c.do(ctx, op, call{method: http.MethodGet, path: path, query: q, identity: identity})
	if err != nil {
		return LastOperation{}, 0, err
	}
	if r.status != http.StatusOK {
		return LastOperation{}, retryAfter(r.header), c.brokerError(op, r.status, r.body)
	}
	var lo LastOperation
	if err := decode(r.body, &lo); err != nil {
		return LastOperation{}, 0, fmt.Errorf("broker %s: %s: %w", c.name, op, err)
	}
	switch lo.State {
	case StateInProgress, StateSucceeded, StateFailed:
	default:
		return LastOperation{}, 0, fmt.Errorf("broker %s: %s: state %q: %w", c.name, op, lo.State, ErrMalformedResponse)
	}
	return lo, retryAfter(r.header), nil
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// Wait polls op's last operation until it succeeds, fails, or runs out of
// time. Between polls it waits the broker's Retry-After or, without one,
// Config.PollInterval doubling up to Config.MaxPollInterval. When
// op.MaximumPollingDuration is set, it gives up that long after op.Started
// with an error matching [ErrPollingTimeout]. A failed operation returns an
// [*Error] matching [ErrOperationFailed] with the broker's description. For a
// deprovision or an unbind, a 410 Gone is success. A nil op (the request
// completed synchronously) succeeds at once. progress, if not nil, is called
// with each "in progress" answer.
func (c *Client) Wait(ctx context.Context, op *Operation, progress func(LastOperation)) (LastOperation, error) {
	return c.wait(ctx, op, progress, true)
}

// wait is Wait, sending the originating identity or not.
func (c *Client) wait(ctx context.Context, op *Operation, progress func(LastOperation), identity bool) (LastOperation, error) {
	if op == nil {
		return LastOperation{State: StateSucceeded}, nil
	}
	if err := c.needIDs("wait for "+op.String(), op.InstanceID); err != nil {
		return LastOperation{}, err
	}
	var deadline time.Time
	if op.MaximumPollingDuration > 0 {
		deadline = op.Started.Add(op.MaximumPollingDuration)
	}
	interval := c.cfg.PollInterval
	failures := 0
	var last LastOperation
	for {
		var (
			lo    LastOperation
			after time.Duration
			err   error
		)
		if op.BindingID != "" {
			lo, after, err = c.lastOperation(ctx, "poll last operation of "+op.String(),
				bindingPath(op.InstanceID, op.BindingID)+"/last_operation", op.Plan, op.ID, identity)
		} else {
			lo, after, err = c.lastOperation(ctx, "poll last operation of "+op.String(),
				instancePath(op.InstanceID)+"/last_operation", op.Plan, op.ID, identity)
		}
		switch {
		case err == nil:
			failures = 0
			last = lo
			switch lo.State {
			case StateSucceeded:
				return lo, nil
			case StateFailed:
				return lo, &Error{Broker: c.name, Op: op.String(), StatusCode: http.StatusOK, State: StateFailed,
					Description: lo.Description, InstanceUsable: lo.InstanceUsable, UpdateRepeatable: lo.UpdateRepeatable}
			}
			if progress != nil {
				progress(lo)
			}
		case errors.Is(err, ErrGone) && (op.Kind == KindDeprovision || op.Kind == KindUnbind):
			return LastOperation{State: StateSucceeded}, nil
		case transient(ctx, err) && failures < maxPollFailures:
			failures++
			c.log.Warn("polling last operation failed, retrying", "operation", op.String(), "error", err)
		default:
			return last, fmt.Errorf("wait for %s: %w", op, err)
		}
		wait := interval
		if after > 0 {
			wait = after
		} else {
			interval = min(interval*2, c.cfg.MaxPollInterval)
		}
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return last, fmt.Errorf("broker %s: wait for %s: still %q after the plan's maximum_polling_duration of %s, giving up: %w",
					c.name, op, last.State, op.MaximumPollingDuration, ErrPollingTimeout)
			}
			wait = min(wait, left)
		}
		if err := sleep(ctx, wait); err != nil {
			return last, fmt.Errorf("broker %s: wait for %s: %w", c.name, op, err)
		}
	}
}

// transient says whether a failed poll is worth repeating.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var na *errNoAnswer
	if errors.As(err, &na) {
		return true
	}
	var be *Error
	return errors.As(err, &be) && be.Temporary()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
