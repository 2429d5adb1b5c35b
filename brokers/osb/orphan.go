package osb

import (
	"context"
	"errors"
	"fmt"
)

// Mitigation is the outcome of an orphan mitigation: the deprovision or
// unbind the client sent after a provision or bind that may have left
// something behind at the broker.
type Mitigation struct {
	// Kind is KindDeprovision or KindUnbind.
	Kind Kind
	// InstanceID is the instance deprovisioned, or whose binding was unbound.
	InstanceID string
	// BindingID is the binding unbound, for KindUnbind.
	BindingID string
	// Cause is the error of the provision or bind that started it.
	Cause error
	// Attempts is how many deprovisions or unbinds were sent.
	Attempts int
	// Err is nil when the broker confirmed the deletion (or that there was
	// nothing to delete), else the last attempt's error.
	Err error
}

// OrphanError is the error of a provision or bind after which the client
// started orphan mitigation. It wraps the original error (errors.Is and
// errors.As see through it); Result reports how the mitigation ended.
type OrphanError struct {
	// Err is the provision's or bind's error.
	Err error
	// Kind is the mitigation: KindDeprovision or KindUnbind.
	Kind Kind
	// InstanceID and BindingID name what is being deleted.
	InstanceID, BindingID string

	done   chan struct{}
	result Mitigation
}

// Error is the original error, saying that mitigation was started.
func (e *OrphanError) Error() string {
	return fmt.Sprintf("%v (orphan mitigation started: %s)", e.Err, e.what())
}

// Unwrap returns the original error.
func (e *OrphanError) Unwrap() error { return e.Err }

func (e *OrphanError) what() string {
	if e.BindingID != "" {
		return fmt.Sprintf("%s instance %s binding %s", e.Kind, e.InstanceID, e.BindingID)
	}
	return fmt.Sprintf("%s instance %s", e.Kind, e.InstanceID)
}

// Result waits for the mitigation to end and returns its outcome, or the
// context's error if it ends first.
func (e *OrphanError) Result(ctx context.Context) (Mitigation, error) {
	select {
	case <-e.done:
		return e.result, nil
	case <-ctx.Done():
		return Mitigation{}, fmt.Errorf("wait for orphan mitigation (%s): %w", e.what(), ctx.Err())
	}
}

// mitigate starts deleting what a failed provision or bind may have created
// and returns cause wrapped in an *OrphanError. The deletion runs in the
// background, detached from ctx's cancellation (ctx may be the one that timed
// out), retried until the broker confirms it or Config.MitigationTimeout
// passes. It sends no originating identity: it acts for no user.
func (c *Client) mitigate(ctx context.Context, kind Kind, instanceID, bindingID string, ref PlanRef, cause error) error {
	oe := &OrphanError{Err: cause, Kind: kind, InstanceID: instanceID, BindingID: bindingID, done: make(chan struct{})}
	log := c.log.With("mitigation", string(kind), "instance", instanceID)
	if bindingID != "" {
		log = log.With("binding", bindingID)
	}
	log.Warn("orphan mitigation: started", "cause", cause)
	go func() {
		defer close(oe.done)
		mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.MitigationTimeout)
		defer cancel()
		m := Mitigation{Kind: kind, InstanceID: instanceID, BindingID: bindingID, Cause: cause}
		backoff := c.cfg.PollInterval
		for {
			m.Attempts++
			err := c.removeOrphan(mctx, kind, instanceID, bindingID, ref)
			if err == nil {
				m.Err = nil
				break
			}
			m.Err = err
			if permanent(err) {
				break
			}
			log.Warn("orphan mitigation: attempt failed, retrying", "attempt", m.Attempts, "error", err)
			if sleep(mctx, backoff) != nil {
				break
			}
			backoff = min(backoff*2, c.cfg.MaxPollInterval)
		}
		oe.result = m
		if m.Err == nil {
			log.Info("orphan mitigation: done", "attempts", m.Attempts)
		} else {
			log.Error("orphan mitigation: gave up; the broker may keep an orphan", "attempts", m.Attempts, "error", m.Err)
		}
		if c.cfg.OnMitigation != nil {
			c.cfg.OnMitigation(m)
		}
	}()
	return oe
}

// removeOrphan sends one deprovision or unbind and waits for it to end.
func (c *Client) removeOrphan(ctx context.Context, kind Kind, instanceID, bindingID string, ref PlanRef) error {
	var (
		op  *Operation
		err error
	)
	if kind == KindUnbind {
		op, err = c.unbind(ctx, instanceID, bindingID, ref, false)
	} else {
		op, err = c.deprovision(ctx, instanceID, ref, false)
	}
	if err != nil {
		return err
	}
	_, err = c.wait(ctx, op, nil, false)
	return err
}

// permanent says whether repeating a deletion cannot help: a 4xx other than
// a 408, a 429 or a ConcurrencyError.
func permanent(err error) bool {
	var be *Error
	if !errors.As(err, &be) || be.State == StateFailed {
		return false
	}
	return be.StatusCode >= 400 && be.StatusCode < 500 && !be.Temporary()
}
