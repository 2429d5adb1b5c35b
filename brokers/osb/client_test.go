package osb_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/brokers/osb"
)

// syncBuffer is a log sink safe for the mitigation goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

const identityJSON = `{"user_id":"683ea748-3092-4ff4-b656-39cacc4d5360","user_name":"ada"}`

// newClient returns a client of b with fast polling and its log.
func newClient(t *testing.T, b *broker, tweak func(*osb.Config)) (*osb.Client, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	cfg := osb.Config{
		Name: "test-broker", URL: b.srv.URL, Username: brokerUser, Password: brokerPass,
		Timeout: 5 * time.Second, PollInterval: 10 * time.Millisecond, MaxPollInterval: 40 * time.Millisecond,
		MitigationTimeout: 10 * time.Second,
		Logger:            slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OriginatingIdentity: func(context.Context) (string, string) {
			return "driftless", identityJSON
		},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := osb.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, logs
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestLifecycle provisions, updates, binds, fetches, unbinds and deprovisions
// on a synchronous and an asynchronous plan.
func TestLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name      string
		plan      string
		wantAsync bool
	}{
		{"sync", planSync, false},
		{"async", planAsync, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t)
			c, _ := newClient(t, b, nil)
			ctx := testCtx(t)
			ref := osb.PlanRef{ServiceID: svcID, PlanID: tc.plan}

			cat, err := c.Catalog(ctx)
			if err != nil {
				t.Fatalf("Catalog: %v", err)
			}
			svc, plan, ok := cat.Plan(tc.plan)
			if !ok || svc.ID != svcID || !plan.IsBindable(svc) || plan.MaintenanceInfo == nil || plan.MaintenanceInfo.Version != "1.2.3" {
				t.Fatalf("catalog plan %s: %+v in %+v", tc.plan, plan, svc)
			}
			if svc.DashboardClient == nil || svc.DashboardClient.Secret != credSecret {
				t.Fatalf("dashboard client not decoded: %v", svc.DashboardClient)
			}

			progress := 0
			onProgress := func(lo osb.LastOperation) {
				progress++
				if lo.State != osb.StateInProgress {
					t.Errorf("progress with state %q", lo.State)
				}
			}
			pr, op, err := c.Provision(ctx, "db-1", osb.ProvisionRequest{ServiceID: svcID, PlanID: tc.plan,
				OrganizationGUID: "org", SpaceGUID: "space", Context: map[string]any{"platform": "driftless"},
				Parameters: map[string]any{"size": "small"}})
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			if (op != nil) != tc.wantAsync {
				t.Fatalf("Provision: operation %v, want async %v", op, tc.wantAsync)
			}
			if !tc.wantAsync && pr.DashboardURL != "https://dash/db-1" {
				t.Errorf("dashboard_url %q", pr.DashboardURL)
			}
			if lo, err := c.Wait(ctx, op, onProgress); err != nil || lo.State != osb.StateSucceeded {
				t.Fatalf("Wait provision: %v %v", lo, err)
			}
			// Provisioning again alike is a 200; with another plan a 409.
			if _, op, err := c.Provision(ctx, "db-1", osb.ProvisionRequest{ServiceID: svcID, PlanID: tc.plan,
				OrganizationGUID: "org", SpaceGUID: "space", Parameters: map[string]any{"size": "small"}}); err != nil || op != nil {
				t.Fatalf("Provision again: %v %v", op, err)
			}
			in, err := c.GetInstance(ctx, "db-1", ref)
			if err != nil || in.PlanID != tc.plan || in.Parameters["size"] != "small" {
				t.Fatalf("GetInstance: %+v %v", in, err)
			}

			_, op, err = c.Update(ctx, "db-1", osb.UpdateRequest{ServiceID: svcID, Parameters: map[string]any{"size": "large"},
				PreviousValues: &osb.PreviousValues{PlanID: tc.plan}, MaintenanceInfo: &osb.MaintenanceInfo{Version: "1.2.3"}})
			if err != nil || (op != nil) != tc.wantAsync {
				t.Fatalf("Update: %v %v", op, err)
			}
			if _, err := c.Wait(ctx, op, onProgress); err != nil {
				t.Fatalf("Wait update: %v", err)
			}

			bd, op, err := c.Bind(ctx, "db-1", "app-1", osb.BindRequest{ServiceID: svcID, PlanID: tc.plan,
				BindResource: &osb.BindResource{AppGUID: "app-guid"}})
			if err != nil || (op != nil) != tc.wantAsync {
				t.Fatalf("Bind: %v %v", op, err)
			}
			if op != nil {
				if _, err := c.Wait(ctx, op, onProgress); err != nil {
					t.Fatalf("Wait bind: %v", err)
				}
				if bd, err = c.GetBinding(ctx, "db-1", "app-1", ref); err != nil {
					t.Fatalf("GetBinding after an async bind: %v", err)
				}
			}
			if bd.Credentials["password"] != credSecret || len(bd.Endpoints) != 1 || bd.Endpoints[0].Ports[0] != "5432" ||
				bd.Metadata == nil || bd.Metadata.ExpiresAt == "" {
				t.Fatalf("Bind answer not decoded: endpoints %v metadata %v", bd.Endpoints, bd.Metadata)
			}
			got, err := c.GetBinding(ctx, "db-1", "app-1", ref)
			if err != nil || got.Credentials["password"] != credSecret {
				t.Fatalf("GetBinding: %v", err)
			}
			op, err = c.Unbind(ctx, "db-1", "app-1", ref)
			if err != nil || (op != nil) != tc.wantAsync {
				t.Fatalf("Unbind: %v %v", op, err)
			}
			if _, err := c.Wait(ctx, op, onProgress); err != nil {
				t.Fatalf("Wait unbind (410 is success): %v", err)
			}
			op, err = c.Deprovision(ctx, "db-1", ref)
			if err != nil || (op != nil) != tc.wantAsync {
				t.Fatalf("Deprovision: %v %v", op, err)
			}
			if _, err := c.Wait(ctx, op, onProgress); err != nil {
				t.Fatalf("Wait deprovision (410 is success): %v", err)
			}
			if b.has("db-1", "") || b.has("db-1", "app-1") {
				t.Fatal("broker still has the instance or binding")
			}
			if tc.wantAsync && progress == 0 {
				t.Error("no in-progress answer reached the progress callback")
			}
			// Both deletions again: 410 Gone is success.
			if op, err := c.Unbind(ctx, "db-1", "app-1", ref); err != nil || op != nil {
				t.Fatalf("Unbind again: %v %v", op, err)
			}
			if op, err := c.Deprovision(ctx, "db-1", ref); err != nil || op != nil {
				t.Fatalf("Deprovision again: %v %v", op, err)
			}
		})
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestHeaders checks the version, basic auth, request identity and
// originating identity on every request of a lifecycle, and that a broker
// requiring another version answers 412.
func TestHeaders(t *testing.T) {
	b := newBroker(t)
	c, _ := newClient(t, b, nil)
	ctx := testCtx(t)
	ref := osb.PlanRef{ServiceID: svcID, PlanID: planAsync}
	if _, err := c.Catalog(ctx); err != nil {
		t.Fatal(err)
	}
	_, op, err := c.Provision(ctx, "db-h", osb.ProvisionRequest{ServiceID: svcID, PlanID: planAsync, OrganizationGUID: "o", SpaceGUID: "s"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, nil); err != nil {
		t.Fatal(err)
	}
	_, op, err = c.Bind(ctx, "db-h", "b", osb.BindRequest{ServiceID: svcID, PlanID: planAsync})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, nil); err != nil {
		t.Fatal(err)
	}
	if op, err = c.Unbind(ctx, "db-h", "b", ref); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, nil); err != nil {
		t.Fatal(err)
	}
	op, err = c.Deprovision(ctx, "db-h", ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx, op, nil); err != nil {
		t.Fatal(err)
	}

	reqs := b.seen()
	if len(reqs) < 8 {
		t.Fatalf("broker saw %d requests", len(reqs))
	}
	ids := map[string]bool{}
	for _, r := range reqs {
		what := r.Method + " " + r.Path
		if got := r.Header.Get("X-Broker-API-Version"); got != "2.17" {
			t.Errorf("%s: version %q", what, got)
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Basic ") {
			t.Errorf("%s: no basic auth", what)
		}
		id := r.Header.Get("X-Broker-API-Request-Identity")
		if !uuidRE.MatchString(id) || ids[id] {
			t.Errorf("%s: request identity %q not a new UUID", what, id)
		}
		ids[id] = true
		if r.Method != http.MethodGet && r.Method != http.MethodPatch && r.Query.Get("accepts_incomplete") != "true" {
			t.Errorf("%s: no accepts_incomplete=true", what)
		}
		oi := r.Header.Get("X-Broker-API-Originating-Identity")
		platform, value, ok := strings.Cut(oi, " ")
		raw, err := base64.StdEncoding.DecodeString(value)
		if !ok || platform != "driftless" || err != nil {
			t.Errorf("%s: originating identity %q", what, oi)
			continue
		}
		var got, want map[string]any
		_ = json.Unmarshal([]byte(identityJSON), &want)
		if err := json.Unmarshal(raw, &got); err != nil || got["user_id"] != want["user_id"] || got["user_name"] != "ada" {
			t.Errorf("%s: originating identity decodes to %s", what, raw)
		}
	}

	b.set(func(b *broker) { b.version = "2.18" })
	_, err = c.Catalog(ctx)
	var e *osb.Error
	if !errors.Is(err, osb.ErrPreconditionFailed) || !errors.As(err, &e) || !strings.Contains(e.Description, "2.18") {
		t.Fatalf("Catalog from a 2.18 broker: %v", err)
	}
	// The broker refuses a request without the version header.
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/v2/catalog", nil)
	req.SetBasicAuth(brokerUser, brokerPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("request without a version: %d", resp.StatusCode)
	}
}

// TestErrors checks that broker errors come back as *Error matching the
// sentinels, with the broker's description and no credential.
func TestErrors(t *testing.T) {
	provision := func(c *osb.Client, ctx context.Context, id, plan string) error {
		_, _, err := c.Provision(ctx, id, osb.ProvisionRequest{ServiceID: svcID, PlanID: plan, OrganizationGUID: "o", SpaceGUID: "s"})
		return err
	}
	for _, tc := range []struct {
		name     string
		setup    func(b *broker)
		do       func(c *osb.Client, ctx context.Context) error
		want     error
		status   int
		wantDesc string
	}{
		{
			name: "409 provision with other attributes",
			do: func(c *osb.Client, ctx context.Context) error {
				if err := provision(c, ctx, "x", planSync); err != nil {
					return err
				}
				return provision(c, ctx, "x", planApp)
			},
			want: osb.ErrConflict, status: 409, wantDesc: "exists with other attributes",
		},
		{
			name: "422 ConcurrencyError updating during an async provision",
			do: func(c *osb.Client, ctx context.Context) error {
				if err := provision(c, ctx, "x", planSlow); err != nil {
					return err
				}
				_, _, err := c.Update(ctx, "x", osb.UpdateRequest{ServiceID: svcID})
				return err
			},
			want: osb.ErrConcurrency, status: 422, wantDesc: "busy with provision",
		},
		{
			name: "422 RequiresApp",
			do: func(c *osb.Client, ctx context.Context) error {
				if err := provision(c, ctx, "x", planApp); err != nil {
					return err
				}
				_, _, err := c.Bind(ctx, "x", "b", osb.BindRequest{ServiceID: svcID, PlanID: planApp})
				return err
			},
			want: osb.ErrRequiresApp, status: 422, wantDesc: "need an app",
		},
		{
			name: "422 MaintenanceInfoConflict",
			do: func(c *osb.Client, ctx context.Context) error {
				if err := provision(c, ctx, "x", planSync); err != nil {
					return err
				}
				_, _, err := c.Update(ctx, "x", osb.UpdateRequest{ServiceID: svcID, MaintenanceInfo: &osb.MaintenanceInfo{Version: "9"}})
				return err
			},
			want: osb.ErrMaintenanceInfoConflict, status: 422, wantDesc: "version is 1.2.3",
		},
		{
			name: "422 AsyncRequired",
			setup: func(b *broker) {
				b.override = func(w http.ResponseWriter, r *http.Request) bool {
					fail(w, http.StatusUnprocessableEntity, "AsyncRequired", "async only")
					return true
				}
			},
			do: func(c *osb.Client, ctx context.Context) error {
				_, err := c.Deprovision(ctx, "x", osb.PlanRef{})
				return err
			},
			want: osb.ErrAsyncRequired, status: 422, wantDesc: "async only",
		},
		{
			name: "404 fetching a missing instance",
			do: func(c *osb.Client, ctx context.Context) error {
				_, err := c.GetInstance(ctx, "nope", osb.PlanRef{})
				return err
			},
			want: osb.ErrNotFound, status: 404, wantDesc: "no instance nope",
		},
		{
			name: "410 polling a missing instance's provision",
			do: func(c *osb.Client, ctx context.Context) error {
				_, err := c.Wait(ctx, &osb.Operation{Kind: osb.KindProvision, InstanceID: "nope"}, nil)
				return err
			},
			want: osb.ErrGone, status: 410, wantDesc: "no instance nope",
		},
		{
			name: "401 wrong password",
			do: func(c *osb.Client, ctx context.Context) error {
				_, err := c.Catalog(ctx)
				return err
			},
			want: osb.ErrUnauthorized, status: 401, wantDesc: "wrong credentials",
		},
		{
			name: "failed last operation",
			setup: func(b *broker) {
				b.override = func(w http.ResponseWriter, r *http.Request) bool {
					if !strings.HasSuffix(r.URL.Path, "/last_operation") {
						return false
					}
					reply(w, 200, map[string]any{"state": "failed", "description": "disk full", "instance_usable": false})
					return true
				}
			},
			do: func(c *osb.Client, ctx context.Context) error {
				if err := provision(c, ctx, "x", planAsync); err != nil {
					return err
				}
				_, err := c.Wait(ctx, &osb.Operation{Kind: osb.KindProvision, InstanceID: "x", ID: "op-1"}, nil)
				return err
			},
			want: osb.ErrOperationFailed, status: 200, wantDesc: "disk full",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t)
			if tc.setup != nil {
				b.set(tc.setup)
			}
			pass := brokerPass
			if strings.HasPrefix(tc.name, "401") {
				pass = "wrong-" + brokerPass
			}
			c, logs := newClient(t, b, func(cfg *osb.Config) { cfg.Password = pass })
			err := tc.do(c, testCtx(t))
			var e *osb.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &e) {
				t.Fatalf("error %v, want one matching %v", err, tc.want)
			}
			if e.StatusCode != tc.status || !strings.Contains(e.Description, tc.wantDesc) || !strings.Contains(err.Error(), tc.wantDesc) {
				t.Fatalf("error %+v (%q), want status %d and description %q", e, err, tc.status, tc.wantDesc)
			}
			if tc.want == osb.ErrOperationFailed && (e.InstanceUsable == nil || *e.InstanceUsable) {
				t.Errorf("instance_usable not carried: %v", e.InstanceUsable)
			}
			for _, sentinel := range []error{osb.ErrGone, osb.ErrConflict, osb.ErrAsyncRequired, osb.ErrConcurrency} {
				if sentinel != tc.want && errors.Is(err, sentinel) {
					t.Errorf("error %v also matches %v", err, sentinel)
				}
			}
			noSecrets(t, err.Error()+logs.String(), pass)
		})
	}
}

// noSecrets fails if s shows a password or a credential.
func noSecrets(t *testing.T, s string, extra ...string) {
	t.Helper()
	for _, secret := range append([]string{brokerPass, credSecret}, extra...) {
		if strings.Contains(s, secret) {
			t.Errorf("secret %q shown in %q", secret, s)
		}
	}
}
