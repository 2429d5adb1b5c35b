package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/brokers/postgres"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
)

// TestHTTP checks the specification's required headers and status codes
// with raw HTTP requests, in order (each row may depend on the ones before).
func TestHTTP(t *testing.T) {
	e := newEnv(t)
	svc, small, medium := postgres.ServiceID, postgres.PlanSmall, postgres.PlanMedium
	provision := func(plan string) string {
		return `{"service_id":"` + svc + `","plan_id":"` + plan + `","organization_guid":"o","space_guid":"s"}`
	}
	bindBody := `{"service_id":"` + svc + `","plan_id":"` + small + `"}`
	q := "?service_id=" + svc + "&plan_id=" + small
	const ok, noAuth, badAuth, oldVersion, noVersion = "ok", "none", "bad", "2.12", "missing"
	rows := []struct {
		name         string
		method, path string
		body         string
		headers      string // ok, none, bad, 2.12, missing
		want         int
	}{
		{"no version", "GET", "/v2/catalog", "", noVersion, http.StatusPreconditionFailed},
		{"version 2.12", "GET", "/v2/catalog", "", oldVersion, http.StatusPreconditionFailed},
		{"no credentials", "GET", "/v2/catalog", "", noAuth, http.StatusUnauthorized},
		{"wrong credentials", "GET", "/v2/catalog", "", badAuth, http.StatusUnauthorized},
		{"catalog", "GET", "/v2/catalog", "", ok, http.StatusOK},
		{"provision", "PUT", "/v2/service_instances/x1?accepts_incomplete=true", provision(small), ok, http.StatusCreated},
		{"provision again alike", "PUT", "/v2/service_instances/x1", provision(small), ok, http.StatusOK},
		{"provision again, other plan", "PUT", "/v2/service_instances/x1", provision(medium), ok, http.StatusConflict},
		{"provision, unknown plan", "PUT", "/v2/service_instances/x2", provision("nope"), ok, http.StatusBadRequest},
		{"provision, bad body", "PUT", "/v2/service_instances/x2", "{", ok, http.StatusBadRequest},
		{"get instance", "GET", "/v2/service_instances/x1", "", ok, http.StatusOK},
		{"get unknown instance", "GET", "/v2/service_instances/nope", "", ok, http.StatusNotFound},
		{"instance last operation", "GET", "/v2/service_instances/x1/last_operation", "", ok, http.StatusOK},
		{"bind unknown instance", "PUT", "/v2/service_instances/nope/service_bindings/b1", bindBody, ok, http.StatusNotFound},
		{"bind", "PUT", "/v2/service_instances/x1/service_bindings/b1?accepts_incomplete=true", bindBody, ok, http.StatusCreated},
		{"bind again alike", "PUT", "/v2/service_instances/x1/service_bindings/b1", bindBody, ok, http.StatusOK},
		{"bind again, other parameters", "PUT", "/v2/service_instances/x1/service_bindings/b1",
			`{"service_id":"` + svc + `","plan_id":"` + small + `","parameters":{"a":1}}`, ok, http.StatusConflict},
		{"bind, unknown predecessor", "PUT", "/v2/service_instances/x1/service_bindings/b2",
			`{"service_id":"` + svc + `","plan_id":"` + small + `","predecessor_binding_id":"nope"}`, ok, http.StatusBadRequest},
		{"get binding", "GET", "/v2/service_instances/x1/service_bindings/b1", "", ok, http.StatusOK},
		{"get unknown binding", "GET", "/v2/service_instances/x1/service_bindings/nope", "", ok, http.StatusNotFound},
		{"update unknown instance", "PATCH", "/v2/service_instances/nope", `{"service_id":"` + svc + `","plan_id":"` + medium + `"}`, ok, http.StatusNotFound},
		{"update", "PATCH", "/v2/service_instances/x1", `{"service_id":"` + svc + `","plan_id":"` + medium + `"}`, ok, http.StatusOK},
		{"unbind without plan", "DELETE", "/v2/service_instances/x1/service_bindings/b1", "", ok, http.StatusBadRequest},
		{"unbind unknown binding", "DELETE", "/v2/service_instances/x1/service_bindings/nope" + q, "", ok, http.StatusGone},
		{"unbind", "DELETE", "/v2/service_instances/x1/service_bindings/b1" + q, "", ok, http.StatusOK},
		{"unbind again", "DELETE", "/v2/service_instances/x1/service_bindings/b1" + q, "", ok, http.StatusGone},
		{"binding last operation, gone", "GET", "/v2/service_instances/x1/service_bindings/b1/last_operation", "", ok, http.StatusGone},
		{"deprovision unknown", "DELETE", "/v2/service_instances/nope" + q, "", ok, http.StatusGone},
		{"deprovision", "DELETE", "/v2/service_instances/x1" + q + "&accepts_incomplete=true", "", ok, http.StatusOK},
		{"deprovision again", "DELETE", "/v2/service_instances/x1" + q, "", ok, http.StatusGone},
		{"instance last operation, gone", "GET", "/v2/service_instances/x1/last_operation", "", ok, http.StatusGone},
	}
	for _, r := range rows {
		var body io.Reader
		if r.body != "" {
			body = strings.NewReader(r.body)
		}
		req, err := http.NewRequest(r.method, e.url+r.path, body)
		if err != nil {
			t.Fatal(err)
		}
		switch r.headers {
		case noAuth:
		case badAuth:
			req.SetBasicAuth(brokerUser, "wrong")
		default:
			req.SetBasicAuth(brokerUser, brokerPass)
		}
		switch r.headers {
		case noVersion:
		case oldVersion:
			req.Header.Set("X-Broker-API-Version", "2.12")
		default:
			req.Header.Set("X-Broker-API-Version", "2.17")
		}
		if r.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != r.want {
			t.Errorf("%s: %s %s = %d, want %d: %s", r.name, r.method, r.path, resp.StatusCode, r.want, raw)
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Errorf("%s: the body is not a JSON object: %s", r.name, raw)
			continue
		}
		if resp.StatusCode >= 400 && resp.StatusCode != http.StatusGone {
			if obj["error"] == nil || obj["description"] == nil {
				t.Errorf("%s: the error body lacks error or description: %s", r.name, raw)
			}
		}
		if strings.HasPrefix(r.name, "bind") && resp.StatusCode < 300 {
			creds, _ := obj["credentials"].(map[string]any)
			if creds["password"] == nil || creds["uri"] == nil {
				t.Errorf("%s: no password or uri in the credentials", r.name)
			}
		}
	}
}

// TestRun serves the broker with Run on a loopback port and stops it with
// its context.
func TestRun(t *testing.T) {
	pg := testenv.StartPostgres(t)
	port, err := children.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- postgres.Run(ctx, postgres.Config{Listen: addr, DSN: pg.DSN, Username: brokerUser, Password: brokerPass,
			PublicHost: "db.example", PublicPort: 6543, Log: slog.New(slog.DiscardHandler)})
	}()
	c, err := osb.New(osb.Config{Name: "pg", URL: "http://" + addr, Username: brokerUser, Password: brokerPass})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 20*time.Second, 100*time.Millisecond, "the broker answers", func() error {
		_, err := c.Catalog(ctx)
		return err
	})
	if _, _, err := c.Provision(ctx, "run-1", osb.ProvisionRequest{ServiceID: postgres.ServiceID, PlanID: postgres.PlanTiny}); err != nil {
		t.Fatal(err)
	}
	b, _, err := c.Bind(ctx, "run-1", "b", osb.BindRequest{ServiceID: postgres.ServiceID, PlanID: postgres.PlanTiny})
	if err != nil {
		t.Fatal(err)
	}
	if b.Credentials["host"] != "db.example" || b.Credentials["port"] != float64(6543) ||
		!strings.Contains(b.Credentials["uri"].(string), "@db.example:6543/") {
		t.Errorf("credentials do not carry the public address: host %v port %v", b.Credentials["host"], b.Credentials["port"])
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
