package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// TestAuth is issue 16's acceptance for API tokens and roles, against
// `driftless dev` with a policy repository: anonymous calls are refused
// (the API and the blob store), while the README's commands work through
// the configuration dev wrote; an auditor reads apps but gets no env and
// cannot sync; a CI token syncs its space only; a revoked token fails at
// once; refusals are events; and a commit to the policy repository changes
// what a role may do, which `driftless can` explains.
func TestAuth(t *testing.T) {
	pol := policyRepo(t, quotas3)
	p := startDev(t, "--policies", pol)
	p.deployHello(t, 1, "Tokens")

	// HTTPS only, with dev's CA: plain HTTP and clients that do not trust
	// the CA get nothing.
	if resp, err := http.Get("http://" + p.api + "/v1/apps"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the API = %d, want 400 (an HTTPS server)", resp.StatusCode)
		}
	}
	if _, err := http.Get(p.apiURL() + "/healthz"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client not trusting dev's CA: %v, want a certificate error", err)
	}
	hc, err := p.httpsClient()
	if err != nil {
		t.Fatal(err)
	}
	// Anonymous: the API and the blob store (droplets are app code).
	for _, path := range []string{"/v1/apps", "/v1/status", "/v1/events", "/v2/", "/v1/blobs/sources/x"} {
		resp, err := hc.Get(p.apiURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("anonymous GET %s = %d, want 401", path, resp.StatusCode)
		}
	}
	// The CLI config dev wrote is the owner's only, and names the API by
	// HTTPS with dev's CA.
	cfgPath := filepath.Join(p.xdg, "driftless", "config.yml")
	if st, err := os.Stat(cfgPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the CLI's configuration: %v, %v (want mode 0600)", st, err)
	}
	if cc, err := api.LoadClientConfig(cfgPath); err != nil || cc.API != p.apiURL() || cc.CA != filepath.Join(p.dir, "data", "tls", "ca.pem") || cc.Token != p.adminToken() {
		t.Fatalf("the CLI's configuration: %+v, %v", cc, err)
	}

	create := func(args ...string) string {
		t.Helper()
		out, err := p.cli(append([]string{"token", "create"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out)
	}
	as := func(tok string, args ...string) (string, error) {
		return p.cli(append(args, "--token", tok)...)
	}
	auditor := create("--name", "audit", "--role", "space-auditor", "--space", "dev")
	ciDev := create("--name", "ci-dev", "--role", "ci", "--space", "dev", "--expires", "1h")
	ciOther := create("--name", "ci-other", "--role", "ci", "--space", "other")

	// The auditor reads apps, never env, and cannot sync.
	if out, err := as(auditor, "app", "hello"); err != nil || !strings.Contains(out, "hello") {
		t.Errorf("auditor reading app hello: %v\n%s", err, out)
	}
	if out, err := as(auditor, "env", "hello"); err == nil || !strings.Contains(err.Error(), "role space-auditor may not read env") {
		t.Errorf("auditor reading env: %v\n%s", err, out)
	}
	if _, err := as(auditor, "sync", "--space", "dev"); err == nil || !strings.Contains(err.Error(), "may not sync sources") {
		t.Errorf("auditor syncing: %v", err)
	}
	// The admin (from dev's configuration) reads the env.
	if out, err := p.cli("env", "hello"); err != nil || !strings.Contains(out, "GREETING=Tokens") {
		t.Errorf("admin reading env: %v\n%s", err, out)
	}

	// CI tokens sync their space only.
	if out, err := as(ciDev, "sync", "--space", "dev"); err != nil {
		t.Errorf("ci-dev syncing dev: %v\n%s", err, out)
	}
	if _, err := as(ciOther, "sync", "--space", "dev"); err == nil || !strings.Contains(err.Error(), "scoped to space(s) other, not dev") {
		t.Errorf("ci-other syncing dev: %v", err)
	}
	if _, err := as(ciDev, "sync"); err == nil || !strings.Contains(err.Error(), "say which one (--space)") {
		t.Errorf("ci-dev syncing every space: %v", err)
	}

	// `driftless can` explains, for the admin, another token's decision.
	out, err := p.cli("can", "read", "env", "--space", "dev", "--token-name", "audit")
	if err == nil || !strings.Contains(out, "no: token audit (role space-auditor) may not read env in space dev: role space-auditor may not read env") {
		t.Errorf("driftless can (auditor, env): %v\n%s", err, out)
	}

	// A revoked token fails at once.
	if out, err := p.cli("token", "revoke", "ci-dev"); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if _, err := as(ciDev, "apps"); err == nil || !strings.Contains(err.Error(), "unknown token") {
		t.Errorf("revoked token: %v", err)
	}

	// The list shows names, roles and use, never a secret.
	var list []api.TokenInfo
	if err := p.cliJSON(&list, "token", "list"); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(list)
	names := map[string]api.TokenInfo{}
	for _, ti := range list {
		names[ti.Name] = ti
	}
	if _, ok := names["ci-dev"]; ok || names["audit"].Role != "space-auditor" || names["audit"].LastUsed.IsZero() ||
		names["admin"].ExpiresAt.Before(time.Now().Add(80*24*time.Hour)) {
		t.Errorf("token list: %s", raw)
	}
	for _, tok := range []string{auditor, ciDev, ciOther, p.adminToken()} {
		_, secret, _ := strings.Cut(strings.TrimPrefix(tok, "dlt_"), "_")
		if strings.Contains(string(raw), secret) {
			t.Fatal("token list shows a secret")
		}
	}

	// Refusals are events, naming the token's id but not its secret.
	evs := eventsAll(t, p.client)
	var refused []model.Event
	for _, ev := range evs {
		if ev.Kind == model.EventAuthFailed {
			refused = append(refused, ev)
		}
	}
	if len(refused) < 6 { // five anonymous GETs, the revoked token
		t.Errorf("auth-failed events: %+v", refused)
	}
	_, ciSecret, _ := strings.Cut(strings.TrimPrefix(ciDev, "dlt_"), "_")
	for _, ev := range refused {
		if strings.Contains(ev.Message, ciSecret) {
			t.Fatalf("an event shows a token's secret: %s", ev.Message)
		}
	}

	// The platform team lets auditors read env, by commit.
	writePolicy(t, pol, map[string]string{"authz.rego": auditorsReadEnv})
	commitPolicy(t, pol, "auditors may read env")
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the new roles are in force", func() error {
		out, err := p.cli("can", "read", "env", "--space", "dev", "--token-name", "audit")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if out, err := as(auditor, "env", "hello"); err != nil || !strings.Contains(out, "GREETING=Tokens") {
		t.Errorf("auditor reading env under the new policy: %v\n%s", err, out)
	}
	// The app served throughout, its droplet pulled with the cell's token.
	p.waitServing(t, 10*time.Second, 1, greetingIs("Tokens"))
	if _, err := p.client.Apps(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
}

// auditorsReadEnv is a policy repository's own driftless.authz: admins
// do everything, auditors read apps and env.
const auditorsReadEnv = `package driftless.authz

import rego.v1

default allow := false

allow if input.subject.role == "admin"

allow if input.subject.role == "cell"

allow if {
	input.subject.role == "space-auditor"
	input.space in input.subject.spaces
	input.verb == "read"
	input.resource in {"apps", "env", "status"}
}
`
