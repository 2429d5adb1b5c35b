package osb_test

// An in-memory OSB 2.17 broker written for the tests, independent of the
// package: it reads and writes plain JSON maps, never the package's types, so
// the client's JSON tags, headers and status handling are checked against it.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sync"
	"testing"
	"time"
)

const (
	brokerUser = "broker-admin"
	brokerPass = "s3cret-broker-pw"
	credSecret = "SECRET-DB-PASSWORD"

	svcID     = "svc-pg"
	planSync  = "plan-sync"
	planAsync = "plan-async"
	planSlow  = "plan-slow" // async, never finishes, maximum_polling_duration 1
	planApp   = "plan-app"  // sync, bindings need an app
)

// seen is a request the broker received.
type seen struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
	Body         map[string]any
	At           time.Time
}

type tbOp struct {
	kind, id  string
	pollsLeft int // -1: never ends
}

type tbInstance struct {
	planID string
	params any
	op     *tbOp
}

type tbBinding struct {
	body map[string]any
	op   *tbOp
}

// broker is the test's OSB server.
type broker struct {
	t   *testing.T
	srv *httptest.Server

	mu             sync.Mutex
	version        string // API version required; default 2.17
	retryAfter     string // Retry-After on last_operation answers
	asyncPolls     int    // in-progress answers before an async op ends
	provisionFails int    // status answered after creating an instance (0: none)
	bindDelay      time.Duration
	bindBody       string // answer body instead of the binding, when set
	override       func(w http.ResponseWriter, r *http.Request) bool
	instances      map[string]*tbInstance
	bindings       map[string]*tbBinding // "instance/binding"
	requests       []seen
	opSeq          int
}

func newBroker(t *testing.T) *broker {
	b := &broker{t: t, version: "2.17", asyncPolls: 2, instances: map[string]*tbInstance{}, bindings: map[string]*tbBinding{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/catalog", b.catalog)
	mux.HandleFunc("PUT /v2/service_instances/{id}", b.provision)
	mux.HandleFunc("PATCH /v2/service_instances/{id}", b.update)
	mux.HandleFunc("DELETE /v2/service_instances/{id}", b.deprovision)
	mux.HandleFunc("GET /v2/service_instances/{id}", b.getInstance)
	mux.HandleFunc("GET /v2/service_instances/{id}/last_operation", b.lastOperation)
	mux.HandleFunc("PUT /v2/service_instances/{id}/service_bindings/{bid}", b.bind)
	mux.HandleFunc("DELETE /v2/service_instances/{id}/service_bindings/{bid}", b.unbind)
	mux.HandleFunc("GET /v2/service_instances/{id}/service_bindings/{bid}", b.getBinding)
	mux.HandleFunc("GET /v2/service_instances/{id}/service_bindings/{bid}/last_operation", b.bindingLastOperation)
	b.srv = httptest.NewServer(b.check(mux))
	t.Cleanup(b.srv.Close)
	return b
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func fail(w http.ResponseWriter, status int, code, desc string) {
	body := map[string]any{"description": desc}
	if code != "" {
		body["error"] = code
	}
	reply(w, status, body)
}

// check records every request and refuses those without the version, basic
// auth or a request identity, as a strict broker does.
func (b *broker) check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), At: time.Now()}
		if r.Body != nil && (r.Method == http.MethodPut || r.Method == http.MethodPatch) {
			if err := json.NewDecoder(r.Body).Decode(&s.Body); err != nil {
				fail(w, http.StatusBadRequest, "", "body is not a JSON object")
				return
			}
		}
		b.mu.Lock()
		b.requests = append(b.requests, s)
		version, override := b.version, b.override
		b.mu.Unlock()
		if got := r.Header.Get("X-Broker-API-Version"); got != version {
			fail(w, http.StatusPreconditionFailed, "", "this broker speaks OSB API "+version+", not "+fmt.Sprintf("%q", got))
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != brokerUser || p != brokerPass {
			fail(w, http.StatusUnauthorized, "", "wrong credentials")
			return
		}
		if r.Header.Get("X-Broker-API-Request-Identity") == "" {
			fail(w, http.StatusBadRequest, "", "no request identity")
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), bodyKey{}, s.Body))
		if override != nil && override(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (b *broker) seen() []seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seen(nil), b.requests...)
}

func (b *broker) set(f func(b *broker)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(b)
}

func (b *broker) catalog(w http.ResponseWriter, _ *http.Request) {
	plan := func(id string, extra map[string]any) map[string]any {
		p := map[string]any{"id": id, "name": id, "description": "a plan", "free": true,
			"maintenance_info": map[string]any{"version": "1.2.3", "description": "postgres 16"}}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	reply(w, http.StatusOK, map[string]any{"services": []any{map[string]any{
		"id": svcID, "name": "postgres", "description": "PostgreSQL", "tags": []string{"sql"},
		"bindable": true, "instances_retrievable": true, "bindings_retrievable": true,
		"plan_updateable": true, "dashboard_client": map[string]any{"id": "dash", "secret": credSecret, "redirect_uri": "https://dash"},
		"plans": []any{
			plan(planSync, nil), plan(planAsync, nil),
			plan(planSlow, map[string]any{"maximum_polling_duration": 1}),
			plan(planApp, nil),
		},
	}}})
}

func async(plan string) bool { return plan == planAsync || plan == planSlow }

func (b *broker) newOp(kind, plan string) *tbOp {
	b.opSeq++
	op := &tbOp{kind: kind, id: fmt.Sprintf("op-%d", b.opSeq), pollsLeft: b.asyncPolls}
	if plan == planSlow {
		op.pollsLeft = -1
	}
	return op
}

func (b *broker) provision(w http.ResponseWriter, r *http.Request) {
	body := bodyOf(r)
	id := r.PathValue("id")
	plan, _ := body["plan_id"].(string)
	if body["service_id"] != svcID || plan == "" {
		fail(w, http.StatusBadRequest, "", "service_id and plan_id are required")
		return
	}
	if async(plan) && r.URL.Query().Get("accepts_incomplete") != "true" {
		fail(w, http.StatusUnprocessableEntity, "AsyncRequired", "this plan needs accepts_incomplete=true")
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if in, ok := b.instances[id]; ok {
		if in.planID != plan || !reflect.DeepEqual(in.params, body["parameters"]) {
			fail(w, http.StatusConflict, "", "instance "+id+" exists with other attributes")
			return
		}
		if in.op != nil {
			reply(w, http.StatusAccepted, map[string]any{"operation": in.op.id})
			return
		}
		reply(w, http.StatusOK, map[string]any{"dashboard_url": "https://dash/" + id})
		return
	}
	in := &tbInstance{planID: plan, params: body["parameters"]}
	b.instances[id] = in
	if b.provisionFails != 0 {
		fail(w, b.provisionFails, "", "the database server fell over")
		return
	}
	if async(plan) {
		in.op = b.newOp("provision", plan)
		reply(w, http.StatusAccepted, map[string]any{"operation": in.op.id})
		return
	}
	reply(w, http.StatusCreated, map[string]any{"dashboard_url": "https://dash/" + id,
		"metadata": map[string]any{"labels": map[string]any{"tier": "dev"}}})
}

type bodyKey struct{}

// bodyOf is the decoded body of the request being served.
func bodyOf(r *http.Request) map[string]any {
	m, _ := r.Context().Value(bodyKey{}).(map[string]any)
	return m
}

func (b *broker) update(w http.ResponseWriter, r *http.Request) {
	body := bodyOf(r)
	id := r.PathValue("id")
	b.mu.Lock()
	defer b.mu.Unlock()
	in, ok := b.instances[id]
	switch {
	case !ok:
		fail(w, http.StatusNotFound, "", "no instance "+id)
		return
	case in.op != nil:
		fail(w, http.StatusUnprocessableEntity, "ConcurrencyError", "instance "+id+" is busy with "+in.op.kind)
		return
	case body["service_id"] != svcID:
		fail(w, http.StatusBadRequest, "", "service_id is required")
		return
	}
	if mi, ok := body["maintenance_info"].(map[string]any); ok && mi["version"] != "1.2.3" {
		fail(w, http.StatusUnprocessableEntity, "MaintenanceInfoConflict", "maintenance_info.version is 1.2.3")
		return
	}
	if p, ok := body["plan_id"].(string); ok {
		in.planID = p
	}
	in.params = body["parameters"]
	if async(in.planID) {
		in.op = b.newOp("update", in.planID)
		reply(w, http.StatusAccepted, map[string]any{"operation": in.op.id})
		return
	}
	reply(w, http.StatusOK, map[string]any{})
}

func (b *broker) deprovision(w http.ResponseWriter, r *http.Request) {
	id, q := r.PathValue("id"), r.URL.Query()
	if q.Get("service_id") == "" || q.Get("plan_id") == "" {
		fail(w, http.StatusBadRequest, "", "service_id and plan_id are required")
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	in, ok := b.instances[id]
	switch {
	case !ok:
		fail(w, http.StatusGone, "", "no instance "+id)
	case in.op != nil && in.op.kind != "deprovision":
		fail(w, http.StatusUnprocessableEntity, "ConcurrencyError", "instance "+id+" is busy with "+in.op.kind)
	case async(in.planID) && q.Get("accepts_incomplete") != "true":
		fail(w, http.StatusUnprocessableEntity, "AsyncRequired", "needs accepts_incomplete=true")
	case async(in.planID):
		if in.op == nil {
			in.op = b.newOp("deprovision", in.planID)
		}
		reply(w, http.StatusAccepted, map[string]any{"operation": in.op.id})
	default:
		delete(b.instances, id)
		reply(w, http.StatusOK, map[string]any{})
	}
}

func (b *broker) getInstance(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b.mu.Lock()
	defer b.mu.Unlock()
	in, ok := b.instances[id]
	switch {
	case !ok:
		fail(w, http.StatusNotFound, "", "no instance "+id)
	case in.op != nil:
		fail(w, http.StatusUnprocessableEntity, "ConcurrencyError", "instance "+id+" is busy")
	default:
		reply(w, http.StatusOK, map[string]any{"service_id": svcID, "plan_id": in.planID, "parameters": in.params,
			"dashboard_url": "https://dash/" + id, "maintenance_info": map[string]any{"version": "1.2.3"}})
	}
}

func (b *broker) lastOperation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.retryAfter != "" {
		w.Header().Set("Retry-After", b.retryAfter)
	}
	in, ok := b.instances[id]
	if !ok {
		fail(w, http.StatusGone, "", "no instance "+id)
		return
	}
	if in.op == nil || in.op.id != r.URL.Query().Get("operation") {
		fail(w, http.StatusBadRequest, "", "no such operation")
		return
	}
	if in.op.pollsLeft != 0 {
		if in.op.pollsLeft > 0 {
			in.op.pollsLeft--
		}
		reply(w, http.StatusOK, map[string]any{"state": "in progress", "description": in.op.kind + " underway"})
		return
	}
	kind := in.op.kind
	in.op = nil
	if kind == "deprovision" {
		delete(b.instances, id)
		fail(w, http.StatusGone, "", "deleted")
		return
	}
	reply(w, http.StatusOK, map[string]any{"state": "succeeded", "description": kind + " done"})
}

func (b *broker) bind(w http.ResponseWriter, r *http.Request) {
	body := bodyOf(r)
	id, bid := r.PathValue("id"), r.PathValue("bid")
	b.mu.Lock()
	in, ok := b.instances[id]
	if !ok || in.op != nil {
		b.mu.Unlock()
		fail(w, http.StatusUnprocessableEntity, "ConcurrencyError", "instance "+id+" is not ready")
		return
	}
	if async(in.planID) && r.URL.Query().Get("accepts_incomplete") != "true" {
		b.mu.Unlock()
		fail(w, http.StatusUnprocessableEntity, "AsyncRequired", "bindings of this plan are asynchronous")
		return
	}
	res, _ := body["bind_resource"].(map[string]any)
	if in.planID == planApp && (res == nil || res["app_guid"] == nil) {
		b.mu.Unlock()
		fail(w, http.StatusUnprocessableEntity, "RequiresApp", "bindings of this plan need an app")
		return
	}
	key := id + "/" + bid
	if old, ok := b.bindings[key]; ok {
		same, op := reflect.DeepEqual(old.body, body), old.op
		b.mu.Unlock()
		switch {
		case !same:
			fail(w, http.StatusConflict, "", "binding "+bid+" exists with other attributes")
		case op != nil:
			reply(w, http.StatusAccepted, map[string]any{"operation": op.id})
		default:
			reply(w, http.StatusOK, bindingAnswer(id, bid))
		}
		return
	}
	bd := &tbBinding{body: body}
	b.bindings[key] = bd
	if async(in.planID) {
		bd.op = b.newOp("bind", in.planID)
		b.mu.Unlock()
		reply(w, http.StatusAccepted, map[string]any{"operation": bd.op.id})
		return
	}
	delay, answer := b.bindDelay, b.bindBody
	b.mu.Unlock()
	if delay > 0 { // the binding exists, the answer is late
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if answer != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(answer))
		return
	}
	reply(w, http.StatusCreated, bindingAnswer(id, bid))
}

func bindingAnswer(id, bid string) map[string]any {
	return map[string]any{
		"credentials": map[string]any{"uri": "postgres://u-" + bid + ":" + credSecret + "@db.internal:5432/" + id,
			"password": credSecret},
		"endpoints": []any{map[string]any{"host": "db.internal", "ports": []string{"5432"}, "protocol": "tcp"}},
		"metadata":  map[string]any{"expires_at": "2027-01-01T00:00:00.000Z", "renew_before": "2026-12-01T00:00:00.000Z"},
	}
}

func (b *broker) unbind(w http.ResponseWriter, r *http.Request) {
	id, bid, q := r.PathValue("id"), r.PathValue("bid"), r.URL.Query()
	if q.Get("service_id") == "" || q.Get("plan_id") == "" {
		fail(w, http.StatusBadRequest, "", "service_id and plan_id are required")
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	bd, ok := b.bindings[id+"/"+bid]
	switch {
	case !ok:
		fail(w, http.StatusGone, "", "no binding "+bid)
	case bd.op != nil && bd.op.kind != "unbind":
		fail(w, http.StatusUnprocessableEntity, "ConcurrencyError", "binding "+bid+" is busy with "+bd.op.kind)
	case async(b.instances[id].planID):
		if bd.op == nil {
			bd.op = b.newOp("unbind", b.instances[id].planID)
		}
		reply(w, http.StatusAccepted, map[string]any{"operation": bd.op.id})
	default:
		delete(b.bindings, id+"/"+bid)
		reply(w, http.StatusOK, map[string]any{})
	}
}

func (b *broker) getBinding(w http.ResponseWriter, r *http.Request) {
	id, bid := r.PathValue("id"), r.PathValue("bid")
	b.mu.Lock()
	defer b.mu.Unlock()
	if bd, ok := b.bindings[id+"/"+bid]; !ok || bd.op != nil && bd.op.kind == "bind" {
		fail(w, http.StatusNotFound, "", "no binding "+bid+" (yet)")
		return
	}
	reply(w, http.StatusOK, bindingAnswer(id, bid))
}

func (b *broker) bindingLastOperation(w http.ResponseWriter, r *http.Request) {
	id, bid := r.PathValue("id"), r.PathValue("bid")
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.retryAfter != "" {
		w.Header().Set("Retry-After", b.retryAfter)
	}
	bd, ok := b.bindings[id+"/"+bid]
	if !ok {
		fail(w, http.StatusGone, "", "no binding "+bid)
		return
	}
	if bd.op == nil || bd.op.id != r.URL.Query().Get("operation") {
		fail(w, http.StatusBadRequest, "", "no such operation")
		return
	}
	if bd.op.pollsLeft != 0 {
		if bd.op.pollsLeft > 0 {
			bd.op.pollsLeft--
		}
		reply(w, http.StatusOK, map[string]any{"state": "in progress"})
		return
	}
	kind := bd.op.kind
	bd.op = nil
	if kind == "unbind" {
		delete(b.bindings, id+"/"+bid)
		fail(w, http.StatusGone, "", "deleted")
		return
	}
	reply(w, http.StatusOK, map[string]any{"state": "succeeded"})
}

func (b *broker) has(instanceID, bindingID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bindingID != "" {
		_, ok := b.bindings[instanceID+"/"+bindingID]
		return ok
	}
	_, ok := b.instances[instanceID]
	return ok
}
