package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/reconciler"
)

// TestServicesRoute: GET /v1/services shows each instance with its state
// and bound apps, filtered by space, never a user-provided service's
// (encrypted) credentials; GET /v1/brokers each broker's offerings or its
// error.
func TestServicesRoute(t *testing.T) {
	secret := "-----BEGIN AGE ENCRYPTED FILE-----\nc2VjcmV0\n-----END AGE ENCRYPTED FILE-----"
	b := &fakeBackend{
		services: []reconciler.ServiceState{
			{Instance: model.ServiceInstance{Space: "dev", Source: "apps", Broker: "pg", State: model.ServiceReady,
				Decl: model.ServiceDecl{Name: "db", Service: "postgresql", Plan: "small", Pos: model.Position{File: "services.yml", Line: 2}}}, Bound: []string{"web"}},
			{Instance: model.ServiceInstance{Space: "dev", Source: "apps", State: model.ServicePending,
				Decl: model.ServiceDecl{Name: "smtp", UserProvided: true, Credentials: secret}}},
			{Instance: model.ServiceInstance{Space: "prod", Source: "prod", State: model.ServiceFailed, Message: "no broker offers service mysql",
				Decl: model.ServiceDecl{Name: "db", Service: "mysql", Plan: "s"}}},
		},
		brokers: []reconciler.BrokerState{
			{Name: "pg", URL: "http://127.0.0.1:9000", Catalog: osb.Catalog{Services: []osb.Service{{Name: "postgresql", Bindable: true, Plans: []osb.Plan{{Name: "small"}, {Name: "big"}}}}}},
			{Name: "down", Err: errors.New("connection refused")},
		},
	}
	h := testHandler(ServerConfig{Backend: b})
	get := func(path string, v any) string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
			t.Fatal(err)
		}
		return rec.Body.String()
	}
	var all, dev []Service
	body := get("/v1/services", &all)
	get("/v1/services?space=dev", &dev)
	if len(all) != 3 || len(dev) != 2 || dev[0].Name != "db" || dev[0].Bound[0] != "web" || dev[0].File != "services.yml" || dev[0].Line != 2 ||
		dev[1].State != model.ServiceReady || !dev[1].UserProvided || all[2].State != model.ServiceFailed || all[2].Message == "" {
		t.Fatalf("services %+v / %+v", all, dev)
	}
	if strings.Contains(body, "c2VjcmV0") || strings.Contains(body, "AGE ENCRYPTED") {
		t.Fatalf("credentials in the answer: %s", body)
	}
	var brokers []Broker
	get("/v1/brokers", &brokers)
	if len(brokers) != 2 || brokers[0].Offerings[0].Plans[1] != "big" || brokers[1].Error != "connection refused" || len(brokers[1].Offerings) != 0 {
		t.Fatalf("brokers %+v", brokers)
	}
}
