package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/children"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// The services e2e tests' helpers: the notes app, its answers, the
// services as `driftless services` shows them, and dev's PostgreSQL.

// notesHost is the notes app's route in the tests' manifests.
const notesHost = "notes.apps.localhost"

// notesBin is the notes example app, built once (beside driftlessBin).
var (
	notesOnce sync.Once
	notesBin  string
	notesErr  error
)

// addNotes copies the notes binary into the repository at apps/notes.
func (p *platform) addNotes() {
	p.t.Helper()
	notesOnce.Do(func() {
		root, err := children.RepoRoot()
		if err != nil {
			notesErr = err
			return
		}
		out := filepath.Join(filepath.Dir(driftlessBin), "notes")
		cmd := exec.Command("go", "build", "-o", out, "./examples/apps/notes")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			notesErr = fmt.Errorf("building examples/apps/notes: %w\n%s", err, b)
			return
		}
		notesBin = out
	})
	if notesErr != nil {
		p.t.Fatal(notesErr)
	}
	data, err := os.ReadFile(notesBin)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(p.repo, "apps", "notes"), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.repo, "apps", "notes", "notes"), data, 0o755); err != nil {
		p.t.Fatal(err)
	}
}

// notesManifest is the notes app's manifest, binding services (none: no
// services: at all).
func notesManifest(services ...string) string {
	m := `applications:
- name: notes
  memory: 64M
  disk_quota: 256M
  buildpacks: [binary_buildpack]
  command: ./notes
  health-check-type: http
  health-check-http-endpoint: /health
  routes:
  - route: ` + notesHost + "\n"
	if len(services) > 0 {
		m += "  services:\n"
		for _, s := range services {
			m += "  - " + s + "\n"
		}
	}
	return m
}

// pgServices is a services.yml declaring db, a postgresql database of
// plan plan, followed by extra (more entries).
func pgServices(plan, extra string) string {
	return "services:\n- name: db\n  service: postgresql\n  plan: " + plan + "\n" + extra
}

// notesBinding and notesInfo are what the notes app answers on /info.
type notesBinding struct {
	Label          string   `json:"label"`
	Name           string   `json:"name"`
	BindingGUID    string   `json:"binding_guid"`
	InstanceName   string   `json:"instance_name"`
	Plan           string   `json:"plan"`
	CredentialKeys []string `json:"credential_keys"`
}

type notesInfo struct {
	GUID     string         `json:"guid"`
	Source   string         `json:"source"`
	Database *notesBinding  `json:"database"`
	Bindings []notesBinding `json:"bindings"`
	Error    string         `json:"error"`
}

// notesNote is one note of GET /notes.
type notesNote struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

// notesInfo asks the notes app for /info through the router.
func (p *platform) notesInfo() (notesInfo, []byte, error) {
	code, body, err := p.get(notesHost, "/info")
	if err != nil {
		return notesInfo{}, nil, err
	}
	if code != http.StatusOK {
		return notesInfo{}, body, fmt.Errorf("/info: %d %s", code, body)
	}
	var in notesInfo
	if err := json.Unmarshal(body, &in); err != nil {
		return notesInfo{}, body, fmt.Errorf("/info %q: %w", body, err)
	}
	return in, body, nil
}

// waitNotesInfo waits until the notes app's /info satisfies ok.
func (p *platform) waitNotesInfo(t testing.TB, timeout time.Duration, what string, ok func(notesInfo) error) notesInfo {
	t.Helper()
	var got notesInfo
	testenv.Eventually(t, timeout, 300*time.Millisecond, what, func() error {
		in, _, err := p.notesInfo()
		if err != nil {
			return err
		}
		if err := ok(in); err != nil {
			return fmt.Errorf("%w (info %+v)", err, in)
		}
		got = in
		return nil
	})
	return got
}

// usesDB is a waitNotesInfo condition: the app reads its database from
// VCAP_SERVICES' binding of db.
func usesDB(in notesInfo) error {
	if in.Source != "VCAP_SERVICES" || in.Database == nil || in.Database.Name != "db" || in.Database.BindingGUID == "" {
		return errors.New("the app does not use db from VCAP_SERVICES")
	}
	return nil
}

// postNote posts a note through the router.
func (p *platform) postNote(body string) error {
	req, err := http.NewRequest(http.MethodPost, "http://"+p.http+"/notes", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Host = notesHost
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST /notes: %d %s", resp.StatusCode, b)
	}
	return nil
}

// notes lists the notes through the router.
func (p *platform) notes() ([]string, error) {
	code, body, err := p.get(notesHost, "/notes")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /notes: %d %s", code, body)
	}
	var ns []notesNote
	if err := json.Unmarshal(body, &ns); err != nil {
		return nil, fmt.Errorf("GET /notes %q: %w", body, err)
	}
	var out []string
	for _, n := range ns {
		out = append(out, n.Body)
	}
	return out, nil
}

// services is `driftless services --json`, by name.
func (p *platform) services() (map[string]api.Service, error) {
	var ss []api.Service
	if err := p.cliJSON(&ss, "services"); err != nil {
		return nil, err
	}
	out := map[string]api.Service{}
	for _, s := range ss {
		out[s.Name] = s
	}
	return out, nil
}

// waitService waits until `driftless services --json` shows name
// satisfying ok.
func (p *platform) waitService(t testing.TB, timeout time.Duration, name, what string, ok func(api.Service) error) api.Service {
	t.Helper()
	var got api.Service
	testenv.Eventually(t, timeout, 300*time.Millisecond, "service "+name+" "+what, func() error {
		ss, err := p.services()
		if err != nil {
			return err
		}
		s, found := ss[name]
		if !found {
			return fmt.Errorf("not listed (services %+v)", ss)
		}
		if err := ok(s); err != nil {
			return fmt.Errorf("%w: %+v", err, s)
		}
		got = s
		return nil
	})
	return got
}

// readyPlan is a waitService condition: ready with plan, bound to bound.
func readyPlan(plan string, bound ...string) func(api.Service) error {
	return func(s api.Service) error {
		if s.State != model.ServiceReady || s.Plan != plan || s.Deleted || !slices.Equal(s.Bound, bound) {
			return fmt.Errorf("want ready, plan %s, bound to %v", plan, bound)
		}
		return nil
	}
}

// superuserDSN is the superuser's DSN of dev's PostgreSQL, over its unix
// socket (no network).
func (p *platform) superuserDSN(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(p.dir, "data", "postgres")
	pw, err := os.ReadFile(filepath.Join(dir, "superuser.password"))
	if err != nil {
		t.Fatalf("dev's PostgreSQL superuser password: %v", err)
	}
	return fmt.Sprintf("host=%s port=5432 user=%s password=%s dbname=postgres sslmode=disable",
		filepath.Join(dir, "run"), children.PostgresSuperuser, strings.TrimSpace(string(pw)))
}

// brokerDatabases lists the databases the postgres broker made (dl_…)
// with their CONNECTION LIMIT (the plan's).
func (p *platform) brokerDatabases(t testing.TB) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.superuserDSN(t))
	if err != nil {
		t.Fatalf("connecting to dev's PostgreSQL as its superuser: %v", err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT datname, datconnlimit FROM pg_database WHERE datname LIKE 'dl\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	var name string
	var limit int
	if _, err := pgx.ForEachRow(rows, []any{&name, &limit}, func() error { out[name] = limit; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// roleExists reports whether dev's PostgreSQL has a role named name.
func (p *platform) roleExists(t testing.TB, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.superuserDSN(t))
	if err != nil {
		t.Fatalf("connecting to dev's PostgreSQL as its superuser: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// bindingFile reads file (binding/key) of the one instance that has it in
// the cell's bindings folders (what the instance finds under /bindings).
func (p *platform) bindingFile(t testing.TB, file string) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(p.dir, "data", "agent", "bindings", "*", file))
	if len(paths) != 1 {
		t.Fatalf("%d instances have the binding file %s, want 1", len(paths), file)
	}
	data, err := os.ReadFile(paths[0])
	if err != nil || len(data) == 0 {
		t.Fatalf("%s: %q, %v", paths[0], data, err)
	}
	return string(data)
}

// connLimit is the CONNECTION LIMIT of the broker's one database.
func (p *platform) connLimit(t testing.TB) (string, int) {
	t.Helper()
	dbs := p.brokerDatabases(t)
	if len(dbs) != 1 {
		t.Fatalf("the broker's databases: %v, want one", dbs)
	}
	for name, limit := range dbs {
		return name, limit
	}
	return "", 0
}

// consulKV reads every Consul KV value under driftless/ of the platform.
func (p *platform) consulKV(t testing.TB) map[string][]byte {
	t.Helper()
	pairs, _, err := p.mustConsulAPI(t).KV().List("driftless/", nil)
	if err != nil {
		t.Fatalf("listing Consul KV: %v", err)
	}
	out := map[string][]byte{}
	for _, kv := range pairs {
		out[kv.Key] = kv.Value
	}
	return out
}

// addStoredOutputs adds what the platform keeps to outputs, for a search
// for secrets: the Consul KV values kv (p.consulKV), dev's own output
// (dev.log), and the platform's other logs (PostgreSQL's, Consul's,
// containerd's, the router's access log) and the apps' output.
func (p *platform) addStoredOutputs(t testing.TB, outputs map[string][]byte, kv map[string][]byte) {
	t.Helper()
	for k, v := range kv {
		outputs["Consul KV "+k] = v
	}
	log, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	outputs["dev's output (dev.log)"] = log
	logs, _ := filepath.Glob(filepath.Join(p.dir, "data", "logs", "*"))
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		outputs["log "+filepath.Base(l)] = data
	}
}
