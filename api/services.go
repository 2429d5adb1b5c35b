package api

import (
	"context"
	"net/http"
	"time"

	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
)

// Service is `driftless services`: one service instance, where its broker
// is with it and the apps that bind it. Credentials are never part of it.
type Service struct {
	Space string `json:"space"`
	Name  string `json:"name"`
	// Service and Plan are the offering and plan git declares; Broker the
	// broker that provisioned it ("" before).
	Service      string `json:"service,omitempty"`
	Plan         string `json:"plan,omitempty"`
	Broker       string `json:"broker,omitempty"`
	UserProvided bool   `json:"user_provided,omitempty"`
	// State is model.ServiceState's; Message the last operation's
	// description or error; Deleted is set while it is deprovisioned.
	State   model.ServiceState `json:"state"`
	Message string             `json:"message,omitempty"`
	Deleted bool               `json:"deleted,omitempty"`
	// Bound are the apps whose desired release binds it.
	Bound []string `json:"bound"`
	// File and Line locate its declaration; Source and Commit the commit
	// that applied it.
	File      string    `json:"file"`
	Line      int       `json:"line"`
	Source    string    `json:"source"`
	Commit    string    `json:"commit"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Broker is `driftless brokers`: one registered broker and its offerings
// (Error when its catalog could not be read).
type Broker struct {
	Name      string          `json:"name"`
	URL       string          `json:"url,omitempty"`
	Offerings []BrokerService `json:"offerings"`
	Error     string          `json:"error,omitempty"`
}

// BrokerService is one offering of a broker, with its plans' names.
type BrokerService struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Bindable    bool     `json:"bindable"`
	Plans       []string `json:"plans"`
}

// serviceViews shows the service instances.
func serviceViews(in []reconciler.ServiceState) []Service {
	out := make([]Service, 0, len(in))
	for _, s := range in {
		si := s.Instance
		v := Service{Space: si.Space, Name: si.Decl.Name, Service: si.Decl.Service, Plan: si.Decl.Plan, Broker: si.Broker,
			UserProvided: si.Decl.UserProvided, State: si.State, Message: si.Message, Deleted: si.Deleted, Bound: s.Bound,
			File: si.Decl.Pos.File, Line: si.Decl.Pos.Line, Source: si.Source, Commit: si.Commit, UpdatedAt: si.UpdatedAt}
		if v.Bound == nil {
			v.Bound = []string{}
		}
		if si.Decl.UserProvided && !si.Deleted {
			v.State = model.ServiceReady // nothing to ask a broker
		}
		out = append(out, v)
	}
	return out
}

// brokerViews shows the registered brokers.
func brokerViews(in []reconciler.BrokerState) []Broker {
	out := make([]Broker, 0, len(in))
	for _, b := range in {
		v := Broker{Name: b.Name, URL: b.URL, Offerings: []BrokerService{}}
		if b.Err != nil {
			v.Error = b.Err.Error()
		}
		for _, svc := range b.Catalog.Services {
			bs := BrokerService{Name: svc.Name, Description: svc.Description, Bindable: svc.Bindable, Plans: []string{}}
			for _, p := range svc.Plans {
				bs.Plans = append(bs.Plans, p.Name)
			}
			v.Offerings = append(v.Offerings, bs)
		}
		out = append(out, v)
	}
	return out
}

func (s *server) services(w http.ResponseWriter, r *http.Request) {
	space := r.URL.Query().Get("space")
	var out []Service
	readable := s.auth.filter(r.Context(), VerbRead, ResourceServices)
	for _, v := range serviceViews(s.cfg.Backend.Services(r.Context())) {
		if (space == "" || v.Space == space) && readable.in(v.Space) {
			out = append(out, v)
		}
	}
	if out == nil {
		out = []Service{}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) brokers(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, brokerViews(s.cfg.Backend.Brokers(r.Context())))
}

// Services lists the service instances, of one space when space is set.
func (c *Client) Services(ctx context.Context, space string) ([]Service, error) {
	var out []Service
	return out, c.do(ctx, http.MethodGet, "/v1/services", spaceQuery(space), &out)
}

// Brokers lists the registered service brokers and their offerings.
func (c *Client) Brokers(ctx context.Context) ([]Broker, error) {
	var out []Broker
	return out, c.do(ctx, http.MethodGet, "/v1/brokers", nil, &out)
}

// PublicKey is GET /v1/secrets/public-key: the platform's age public key,
// which user-provided credentials are encrypted to.
type PublicKey struct {
	Recipient string `json:"recipient"`
}

func (s *server) publicKey(w http.ResponseWriter, _ *http.Request) {
	if s.cfg.PublicKey == "" {
		writeError(w, http.StatusNotFound, "this controller has no public key")
		return
	}
	writeJSON(w, http.StatusOK, PublicKey{Recipient: s.cfg.PublicKey})
}

// PublicKey fetches the platform's age public key.
func (c *Client) PublicKey(ctx context.Context) (string, error) {
	var out PublicKey
	return out.Recipient, c.do(ctx, http.MethodGet, "/v1/secrets/public-key", nil, &out)
}
