package osb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// PlanRef names the offering and plan of an instance: the service_id and
// plan_id query parameters of deprovision, unbind, fetch and last_operation.
type PlanRef struct {
	// ServiceID is the offering's id.
	ServiceID string
	// PlanID is the plan's id.
	PlanID string
}

func (p PlanRef) query() url.Values {
	q := url.Values{}
	if p.ServiceID != "" {
		q.Set("service_id", p.ServiceID)
	}
	if p.PlanID != "" {
		q.Set("plan_id", p.PlanID)
	}
	return q
}

// Kind is the kind of an operation on a broker.
type Kind string

// The operations that can be asynchronous.
const (
	KindProvision   Kind = "provision"
	KindUpdate      Kind = "update"
	KindDeprovision Kind = "deprovision"
	KindBind        Kind = "bind"
	KindUnbind      Kind = "unbind"
)

// Operation is an asynchronous operation a broker accepted with 202
// Accepted; [Client.Wait] polls it to its end.
type Operation struct {
	// Kind is what the operation does.
	Kind Kind
	// InstanceID is the instance operated on.
	InstanceID string
	// BindingID is the binding operated on, for bind and unbind.
	BindingID string
	// Plan is sent back when polling (for an update, the plan asked for).
	Plan PlanRef
	// ID is the broker's operation string; may be empty.
	ID string
	// Started is when the request was sent.
	Started time.Time
	// MaximumPollingDuration is the plan's maximum_polling_duration, known
	// when the client fetched the catalog; 0 means no limit. The caller may
	// set it.
	MaximumPollingDuration time.Duration
}

// String says what the operation does, e.g. "bind instance db-1 binding b-1".
func (o Operation) String() string {
	s := string(o.Kind) + " instance " + o.InstanceID
	if o.BindingID != "" {
		s += " binding " + o.BindingID
	}
	return s
}

func (c *Client) newOperation(kind Kind, instanceID, bindingID string, ref PlanRef, id string, started time.Time) *Operation {
	c.mu.Lock()
	limit := c.plans[ref.PlanID]
	c.mu.Unlock()
	return &Operation{Kind: kind, InstanceID: instanceID, BindingID: bindingID, Plan: ref, ID: id,
		Started: started, MaximumPollingDuration: limit}
}

func asyncQuery(q url.Values) url.Values {
	if q == nil {
		q = url.Values{}
	}
	q.Set("accepts_incomplete", "true")
	return q
}

func instancePath(id string) string { return "/v2/service_instances/" + pathID(id) }

func bindingPath(instanceID, bindingID string) string {
	return instancePath(instanceID) + "/service_bindings/" + pathID(bindingID)
}

func (c *Client) needIDs(op string, ids ...string) error {
	for _, id := range ids {
		if id == "" {
			return fmt.Errorf("broker %s: %s: empty id", c.name, op)
		}
	}
	return nil
}

// exchange sends a request, decodes a success answer (one of ok) into out and
// returns its status. With om set, an answer that may have left an orphan (no
// answer, a 5xx, an unexpected 2xx, a malformed 201) is passed to om.
func (c *Client) exchange(ctx context.Context, op string, cl call, out any, om func(error) error, ok ...int) (int, error) {
	mitigate := func(err error) error {
		if om != nil {
			return om(err)
		}
		return err
	}
	r, err := c.do(ctx, op, cl)
	if err != nil {
		if na := (*errNoAnswer)(nil); errors.As(err, &na) && na.unsent {
			return 0, err // the broker never saw it: nothing to mitigate
		}
		return 0, mitigate(err)
	}
	if slices.Contains(ok, r.status) {
		if r.status == http.StatusGone {
			return r.status, nil
		}
		if err := decode(r.body, out); err != nil {
			err = fmt.Errorf("broker %s: %s: %d %s: %w", c.name, op, r.status, http.StatusText(r.status), err)
			if r.status == http.StatusCreated {
				return 0, mitigate(err)
			}
			return 0, err
		}
		return r.status, nil
	}
	e := c.brokerError(op, r.status, r.body)
	if r.status >= 500 || (r.status >= 200 && r.status < 300) {
		return 0, mitigate(e)
	}
	return 0, e
}

// Catalog fetches the broker's catalog (GET /v2/catalog). The client
// remembers each plan's maximum_polling_duration for the operations it
// starts afterwards.
func (c *Client) Catalog(ctx context.Context) (Catalog, error) {
	var cat Catalog
	if _, err := c.exchange(ctx, "fetch catalog", call{method: http.MethodGet, path: "/v2/catalog", identity: true},
		&cat, nil, http.StatusOK); err != nil {
		return Catalog{}, err
	}
	c.mu.Lock()
	for _, s := range cat.Services {
		for _, p := range s.Plans {
			c.plans[p.ID] = p.PollingLimit()
		}
	}
	c.mu.Unlock()
	return cat, nil
}

// Provision creates an instance (PUT /v2/service_instances/:instance_id).
// A 200 (it already exists alike) or 201 returns the response and a nil
// Operation; a 202 returns the Operation to [Client.Wait] on. A timeout, a
// network failure, a 5xx, an unexpected 2xx or a malformed 201 starts orphan
// mitigation and returns an [*OrphanError] wrapping the error.
func (c *Client) Provision(ctx context.Context, instanceID string, req ProvisionRequest) (ProvisionResponse, *Operation, error) {
	op := "provision instance " + instanceID
	if err := c.needIDs(op, instanceID); err != nil {
		return ProvisionResponse{}, nil, err
	}
	ref := PlanRef{ServiceID: req.ServiceID, PlanID: req.PlanID}
	om := func(err error) error { return c.mitigate(ctx, KindDeprovision, instanceID, "", ref, err) }
	started := time.Now()
	var pr ProvisionResponse
	status, err := c.exchange(ctx, op, call{method: http.MethodPut, path: instancePath(instanceID),
		query: asyncQuery(nil), body: req, identity: true}, &pr, om, http.StatusOK, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return ProvisionResponse{}, nil, err
	}
	if status == http.StatusAccepted {
		return pr, c.newOperation(KindProvision, instanceID, "", ref, pr.Operation, started), nil
	}
	return pr, nil, nil
}

// Update changes an instance's plan, parameters, context or maintenance
// version (PATCH /v2/service_instances/:instance_id). A 202 returns the
// Operation to [Client.Wait] on.
func (c *Client) Update(ctx context.Context, instanceID string, req UpdateRequest) (UpdateResponse, *Operation, error) {
	op := "update instance " + instanceID
	if err := c.needIDs(op, instanceID); err != nil {
		return UpdateResponse{}, nil, err
	}
	ref := PlanRef{ServiceID: req.ServiceID, PlanID: req.PlanID}
	if ref.PlanID == "" && req.PreviousValues != nil {
		ref.PlanID = req.PreviousValues.PlanID
	}
	started := time.Now()
	var ur UpdateResponse
	status, err := c.exchange(ctx, op, call{method: http.MethodPatch, path: instancePath(instanceID),
		query: asyncQuery(nil), body: req, identity: true}, &ur, nil, http.StatusOK, http.StatusAccepted)
	if err != nil {
		return UpdateResponse{}, nil, err
	}
	if status == http.StatusAccepted {
		return ur, c.newOperation(KindUpdate, instanceID, "", ref, ur.Operation, started), nil
	}
	return ur, nil, nil
}

// Deprovision deletes an instance (DELETE /v2/service_instances/:instance_id).
// A 200, or a 410 Gone (it does not exist), returns a nil Operation; a 202
// returns the Operation to [Client.Wait] on.
func (c *Client) Deprovision(ctx context.Context, instanceID string, ref PlanRef) (*Operation, error) {
	return c.deprovision(ctx, instanceID, ref, true)
}

func (c *Client) deprovision(ctx context.Context, instanceID string, ref PlanRef, identity bool) (*Operation, error) {
	op := "deprovision instance " + instanceID
	if err := c.needIDs(op, instanceID); err != nil {
		return nil, err
	}
	started := time.Now()
	var ar AsyncResponse
	status, err := c.exchange(ctx, op, call{method: http.MethodDelete, path: instancePath(instanceID),
		query: asyncQuery(ref.query()), identity: identity}, &ar, nil, http.StatusOK, http.StatusAccepted, http.StatusGone)
	if err != nil || status != http.StatusAccepted {
		return nil, err
	}
	return c.newOperation(KindDeprovision, instanceID, "", ref, ar.Operation, started), nil
}

// Bind creates a binding (PUT
// /v2/service_instances/:instance_id/service_bindings/:binding_id). A 200 (it
// already exists alike) or 201 returns the binding and a nil Operation; a 202
// returns the Operation to [Client.Wait] on, after which [Client.GetBinding]
// fetches the binding. A timeout, a network failure, a 5xx, an unexpected 2xx
// or a malformed 201 starts orphan mitigation (an unbind) and returns an
// [*OrphanError] wrapping the error.
func (c *Client) Bind(ctx context.Context, instanceID, bindingID string, req BindRequest) (Binding, *Operation, error) {
	op := "bind instance " + instanceID + " binding " + bindingID
	if err := c.needIDs(op, instanceID, bindingID); err != nil {
		return Binding{}, nil, err
	}
	ref := PlanRef{ServiceID: req.ServiceID, PlanID: req.PlanID}
	om := func(err error) error { return c.mitigate(ctx, KindUnbind, instanceID, bindingID, ref, err) }
	started := time.Now()
	var b struct {
		Binding
		Operation string `json:"operation,omitempty"`
	}
	status, err := c.exchange(ctx, op, call{method: http.MethodPut, path: bindingPath(instanceID, bindingID),
		query: asyncQuery(nil), body: req, identity: true}, &b, om, http.StatusOK, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return Binding{}, nil, err
	}
	if status == http.StatusAccepted {
		return Binding{}, c.newOperation(KindBind, instanceID, bindingID, ref, b.Operation, started), nil
	}
	return b.Binding, nil, nil
}

// Unbind deletes a binding (DELETE
// /v2/service_instances/:instance_id/service_bindings/:binding_id). A 200,
// or a 410 Gone (it does not exist), returns a nil Operation; a 202 returns
// the Operation to [Client.Wait] on.
func (c *Client) Unbind(ctx context.Context, instanceID, bindingID string, ref PlanRef) (*Operation, error) {
	return c.unbind(ctx, instanceID, bindingID, ref, true)
}

func (c *Client) unbind(ctx context.Context, instanceID, bindingID string, ref PlanRef, identity bool) (*Operation, error) {
	op := "unbind instance " + instanceID + " binding " + bindingID
	if err := c.needIDs(op, instanceID, bindingID); err != nil {
		return nil, err
	}
	started := time.Now()
	var ar AsyncResponse
	status, err := c.exchange(ctx, op, call{method: http.MethodDelete, path: bindingPath(instanceID, bindingID),
		query: asyncQuery(ref.query()), identity: identity}, &ar, nil, http.StatusOK, http.StatusAccepted, http.StatusGone)
	if err != nil || status != http.StatusAccepted {
		return nil, err
	}
	return c.newOperation(KindUnbind, instanceID, bindingID, ref, ar.Operation, started), nil
}

// GetInstance fetches an instance (GET /v2/service_instances/:instance_id),
// for offerings with instances_retrievable. A 404 matches [ErrNotFound]; a
// 422 ConcurrencyError means it is still being provisioned or updated.
func (c *Client) GetInstance(ctx context.Context, instanceID string, ref PlanRef) (Instance, error) {
	op := "fetch instance " + instanceID
	if err := c.needIDs(op, instanceID); err != nil {
		return Instance{}, err
	}
	var in Instance
	if _, err := c.exchange(ctx, op, call{method: http.MethodGet, path: instancePath(instanceID),
		query: ref.query(), identity: true}, &in, nil, http.StatusOK); err != nil {
		return Instance{}, err
	}
	return in, nil
}

// GetBinding fetches a binding (GET
// /v2/service_instances/:instance_id/service_bindings/:binding_id), for
// offerings with bindings_retrievable and after an asynchronous bind.
func (c *Client) GetBinding(ctx context.Context, instanceID, bindingID string, ref PlanRef) (Binding, error) {
	op := "fetch instance " + instanceID + " binding " + bindingID
	if err := c.needIDs(op, instanceID, bindingID); err != nil {
		return Binding{}, err
	}
	var b Binding
	if _, err := c.exchange(ctx, op, call{method: http.MethodGet, path: bindingPath(instanceID, bindingID),
		query: ref.query(), identity: true}, &b, nil, http.StatusOK); err != nil {
		return Binding{}, err
	}
	return b, nil
}
