package osb_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/brokers/osb"
)

// TestOrphanMitigation checks which failed provisions and binds start a
// deprovision or unbind of the same id, that the broker sees it (without an
// originating identity: it acts for no user), and that the caller gets the
// original error and the mitigation's outcome.
func TestOrphanMitigation(t *testing.T) {
	provision := func(ctx context.Context, c *osb.Client) error {
		_, _, err := c.Provision(ctx, "db", osb.ProvisionRequest{ServiceID: svcID, PlanID: planSync, OrganizationGUID: "o", SpaceGUID: "s"})
		return err
	}
	bind := func(ctx context.Context, c *osb.Client) error {
		if err := provision(ctx, c); err != nil {
			return fmt.Errorf("provision before bind: %w", err)
		}
		_, _, err := c.Bind(ctx, "db", "b1", osb.BindRequest{ServiceID: svcID, PlanID: planSync})
		return err
	}
	for _, tc := range []struct {
		name      string
		setup     func(b *broker)
		timeout   time.Duration // client's request timeout
		do        func(ctx context.Context, c *osb.Client) error
		mitigates string // the path of the DELETE expected, "" for none
		wantErr   func(error) bool
	}{
		{
			name:      "provision 500",
			setup:     func(b *broker) { b.provisionFails = http.StatusInternalServerError },
			do:        provision,
			mitigates: "/v2/service_instances/db",
			wantErr: func(err error) bool {
				var e *osb.Error
				return errors.As(err, &e) && e.StatusCode == 500 && e.Description == "the database server fell over"
			},
		},
		{
			name:      "provision unexpected 204",
			setup:     func(b *broker) { b.provisionFails = http.StatusNoContent },
			do:        provision,
			mitigates: "/v2/service_instances/db",
			wantErr:   func(err error) bool { var e *osb.Error; return errors.As(err, &e) && e.StatusCode == 204 },
		},
		{
			name:      "bind times out",
			setup:     func(b *broker) { b.bindDelay = 3 * time.Second },
			timeout:   300 * time.Millisecond,
			do:        bind,
			mitigates: "/v2/service_instances/db/service_bindings/b1",
			wantErr:   func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
		},
		{
			name:      "bind 201 with an unreadable body",
			setup:     func(b *broker) { b.bindBody = `{"credentials": "` + credSecret + `"}` },
			do:        bind,
			mitigates: "/v2/service_instances/db/service_bindings/b1",
			wantErr:   func(err error) bool { return errors.Is(err, osb.ErrMalformedResponse) },
		},
		{
			name:    "provision 400: rejected, nothing to mitigate",
			setup:   func(b *broker) { b.provisionFails = http.StatusBadRequest },
			do:      provision,
			wantErr: func(err error) bool { return errors.Is(err, osb.ErrBadRequest) },
		},
		{
			name: "bind 408: never received, nothing to mitigate",
			setup: func(b *broker) {
				b.override = func(w http.ResponseWriter, r *http.Request) bool {
					if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/service_bindings/") {
						return false
					}
					fail(w, http.StatusRequestTimeout, "", "too slow")
					return true
				}
			},
			do:      bind,
			wantErr: func(err error) bool { var e *osb.Error; return errors.As(err, &e) && e.StatusCode == 408 },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t)
			b.set(tc.setup)
			var (
				mu     sync.Mutex
				called []osb.Mitigation
			)
			c, logs := newClient(t, b, func(cfg *osb.Config) {
				if tc.timeout > 0 {
					cfg.Timeout = tc.timeout
				}
				cfg.OnMitigation = func(m osb.Mitigation) {
					mu.Lock()
					defer mu.Unlock()
					called = append(called, m)
				}
			})
			ctx := testCtx(t)
			err := tc.do(ctx, c)
			if err == nil || !tc.wantErr(err) {
				t.Fatalf("error %v", err)
			}
			noSecrets(t, err.Error())
			var oe *osb.OrphanError
			if tc.mitigates == "" {
				if errors.As(err, &oe) {
					t.Fatalf("mitigation started: %v", err)
				}
				for _, r := range b.seen() {
					if r.Method == http.MethodDelete {
						t.Errorf("broker saw %s %s", r.Method, r.Path)
					}
				}
				return
			}
			if !errors.As(err, &oe) {
				t.Fatalf("error %v is no *OrphanError", err)
			}
			m, err := oe.Result(ctx)
			if err != nil || m.Err != nil || m.Attempts != 1 || m.Cause == nil {
				t.Fatalf("mitigation: %+v %v", m, err)
			}
			var deletes []seen
			for _, r := range b.seen() {
				if r.Method == http.MethodDelete {
					deletes = append(deletes, r)
				}
			}
			if len(deletes) != 1 || deletes[0].Path != tc.mitigates {
				t.Fatalf("broker saw deletes %v, want one of %s", deletes, tc.mitigates)
			}
			if oi := deletes[0].Header.Get("X-Broker-API-Originating-Identity"); oi != "" {
				t.Errorf("mitigation sent originating identity %q", oi)
			}
			if q := deletes[0].Query; q.Get("service_id") != svcID || q.Get("plan_id") != planSync {
				t.Errorf("mitigation query %v", q)
			}
			if strings.Contains(tc.mitigates, "bindings") && b.has("db", "b1") || !strings.Contains(tc.mitigates, "bindings") && b.has("db", "") {
				t.Error("the orphan is still at the broker")
			}
			mu.Lock()
			if len(called) != 1 || called[0].Err != nil {
				t.Errorf("OnMitigation got %+v", called)
			}
			mu.Unlock()
			log := logs.String()
			if !strings.Contains(log, "orphan mitigation: started") || !strings.Contains(log, "orphan mitigation: done") {
				t.Errorf("mitigation not logged: %s", log)
			}
			noSecrets(t, log)
		})
	}
}

// TestNoMitigationWhenUnsent: a provision the broker cannot have received (a
// context already ended, a connection refused) starts no mitigation.
func TestNoMitigationWhenUnsent(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func() context.Context
		url  func(b *broker) string
	}{
		{"context ended", func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}, func(b *broker) string { return b.srv.URL }},
		{"connection refused", context.Background, func(b *broker) string {
			b.srv.Close()
			return b.srv.URL
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t)
			u := tc.url(b)
			c, logs := newClient(t, b, func(cfg *osb.Config) { cfg.URL = u })
			_, _, err := c.Provision(tc.ctx(), "db", osb.ProvisionRequest{ServiceID: svcID, PlanID: planSync, OrganizationGUID: "o", SpaceGUID: "s"})
			var oe *osb.OrphanError
			if err == nil || errors.As(err, &oe) {
				t.Fatalf("error %v, want one without mitigation", err)
			}
			if strings.Contains(logs.String(), "orphan") || len(b.seen()) != 0 {
				t.Fatalf("broker saw %v; log %s", b.seen(), logs)
			}
		})
	}
}

// TestOrphanMitigationRetries: the mitigation repeats a deprovision the
// broker refuses with ConcurrencyError until it is accepted.
func TestOrphanMitigationRetries(t *testing.T) {
	b := newBroker(t)
	refusals := 2
	b.set(func(b *broker) {
		b.provisionFails = http.StatusBadGateway
		b.override = func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodDelete || refusals == 0 {
				return false
			}
			refusals--
			fail(w, http.StatusUnprocessableEntity, "ConcurrencyError", "still provisioning")
			return true
		}
	})
	c, _ := newClient(t, b, nil)
	ctx := testCtx(t)
	_, _, err := c.Provision(ctx, "db", osb.ProvisionRequest{ServiceID: svcID, PlanID: planSync, OrganizationGUID: "o", SpaceGUID: "s"})
	var oe *osb.OrphanError
	if !errors.As(err, &oe) {
		t.Fatalf("error %v", err)
	}
	m, err := oe.Result(ctx)
	if err != nil || m.Err != nil || m.Attempts != 3 || b.has("db", "") {
		t.Fatalf("mitigation %+v %v", m, err)
	}
}

// TestNoSecrets checks that the broker's password (given or in the URL's
// user info) and a binding's credentials never show in errors, logs or
// printed values.
func TestNoSecrets(t *testing.T) {
	b := newBroker(t)
	withUserInfo := strings.Replace(b.srv.URL, "://", "://"+brokerUser+":"+brokerPass+"@", 1)
	logs := &syncBuffer{}
	c, err := osb.New(osb.Config{Name: "b", URL: withUserInfo, PollInterval: 10 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	cat, err := c.Catalog(ctx) // user info is used as the credentials
	if err != nil {
		t.Fatalf("Catalog with URL user info: %v", err)
	}
	if _, _, err := c.Provision(ctx, "db", osb.ProvisionRequest{ServiceID: svcID, PlanID: planSync, OrganizationGUID: "o", SpaceGUID: "s"}); err != nil {
		t.Fatal(err)
	}
	bd, _, err := c.Bind(ctx, "db", "b", osb.BindRequest{ServiceID: svcID, PlanID: planSync})
	if err != nil || bd.Credentials["password"] != credSecret {
		t.Fatalf("Bind: %v", err)
	}
	for _, r := range b.seen() {
		if strings.Contains(r.Path, brokerPass) || strings.Contains(r.Query.Encode(), brokerPass) {
			t.Errorf("password in request URL %s", r.Path)
		}
	}
	cfg := osb.Config{URL: withUserInfo, Password: brokerPass}
	slog.New(slog.NewTextHandler(logs, nil)).Info("values", "binding", bd, "credentials", bd.Credentials,
		"config", cfg, "dashboard", *cat.Services[0].DashboardClient)
	var shown strings.Builder
	for _, v := range []any{bd, &bd, bd.Credentials, cfg, c, cat, *cat.Services[0].DashboardClient} {
		fmt.Fprintf(&shown, "%v %+v %#v %s\n", v, v, v, v)
	}
	// Errors: a 500 with orphan mitigation, a refused login, a malformed answer.
	b.set(func(b *broker) {
		b.provisionFails = 500
		b.bindBody = `{"credentials": {"password": 1}, "endpoints": "` + credSecret + `"}`
	})
	_, _, err = c.Provision(ctx, "db2", osb.ProvisionRequest{ServiceID: svcID, PlanID: planSync, OrganizationGUID: "o", SpaceGUID: "s"})
	var oe *osb.OrphanError
	if !errors.As(err, &oe) {
		t.Fatalf("Provision with a 500: %v", err)
	}
	if _, err := oe.Result(ctx); err != nil {
		t.Fatal(err)
	}
	shown.WriteString(err.Error())
	_, _, err = c.Bind(ctx, "db", "b2", osb.BindRequest{ServiceID: svcID, PlanID: planSync})
	if !errors.Is(err, osb.ErrMalformedResponse) {
		t.Fatalf("Bind with a malformed answer: %v", err)
	}
	shown.WriteString(err.Error())
	bad, _ := osb.New(osb.Config{URL: strings.Replace(withUserInfo, brokerPass, "nope-"+brokerPass, 1)})
	_, err = bad.Catalog(ctx)
	if !errors.Is(err, osb.ErrUnauthorized) {
		t.Fatalf("Catalog with a wrong password: %v", err)
	}
	shown.WriteString(err.Error())
	_, err = osb.New(osb.Config{URL: "ftp://u:" + brokerPass + "@host"})
	shown.WriteString(err.Error())
	noSecrets(t, shown.String()+logs.String())
	if !strings.Contains(shown.String(), "[redacted]") {
		t.Errorf("no redaction marker in %s", shown.String())
	}
}
