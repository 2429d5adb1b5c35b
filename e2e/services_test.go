package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/brokers/postgres"
	"github.com/driftless/driftless/catalog"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// TestServices: the notes app bound to db (postgresql, plan small, from
// dev --postgres's built-in broker) waits for its binding, then gets it:
// `driftless services` shows db ready and bound to notes, and a note posted
// through the router comes back (the app reached its database with the
// binding's credentials). A new plan is the broker's update, in place,
// while the app answers. Dropping db while notes binds it is refused at
// the manifest's file:line and changes nothing. Unbinding rolls the app to
// no binding; rebinding makes a new binding (a new binding_guid) to the
// same database, notes kept. Dropping db deprovisions it: gone from
// `driftless services`, its database dropped from the server.
func TestServices(t *testing.T) {
	p := startDev(t, "--postgres")
	p.addNotes()
	p.write(map[string]string{"apps/notes/manifest.yml": notesManifest("db"), "services.yml": pgServices("small", "")})
	first := p.commitAll("notes, bound to a new database")

	// While db is made and bound, `driftless app notes` says what the
	// instances wait for (if we are quick enough to see it).
	caught := ""
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && caught == ""; time.Sleep(50 * time.Millisecond) {
		out, err := p.cli("app", "notes")
		if err == nil && strings.Contains(out, "waiting for service db") {
			caught = out
		}
		if _, _, err := p.notesInfo(); err == nil {
			break // too late: it runs
		}
	}
	if caught != "" {
		t.Logf("driftless app notes while waiting:\n%s", caught)
		if !regexp.MustCompile(`problem: instances wait: waiting for service db \((pending|creating|ready; binding it)\)`).MatchString(caught) {
			t.Errorf("driftless app notes does not say what notes waits for:\n%s", caught)
		}
	} else {
		t.Log("the wait for db was too short to catch in driftless app notes")
	}

	p.waitApplied(t, first, 30*time.Second)
	db := p.waitService(t, 60*time.Second, "db", "ready and bound to notes", readyPlan("small", "notes"))
	if db.Service != "postgresql" || db.Broker != "postgres" || db.File != model.ServicesFile || db.Line != 2 {
		t.Fatalf("db as listed: %+v", db)
	}
	if ss, err := p.services(); err != nil || len(ss) != 1 {
		t.Fatalf("services: %+v, %v", ss, err)
	}
	bound := p.waitNotesInfo(t, 90*time.Second, "notes uses db", usesDB)
	if bound.Database.Label != "postgresql" || bound.Database.Plan != "small" || !slices.Contains(bound.Database.CredentialKeys, "uri") {
		t.Fatalf("the binding notes uses: %+v", bound.Database)
	}
	database, limit := p.connLimit(t)
	if small, _ := postgres.Limits(postgres.PlanSmall); limit != small.Connections {
		t.Fatalf("database %s allows %d connections, plan small %d", database, limit, small.Connections)
	}
	role := p.bindingFile(t, "db/username")
	if !p.roleExists(t, role) {
		t.Fatalf("the binding's role %s is not in PostgreSQL", role)
	}
	if err := p.postNote("first note"); err != nil {
		t.Fatal(err)
	}
	if got, err := p.notes(); err != nil || !slices.Equal(got, []string{"first note"}) {
		t.Fatalf("notes: %q, %v", got, err)
	}

	// A new plan: the broker updates db in place; the app keeps answering.
	p.write(map[string]string{"services.yml": pgServices("medium", "")})
	p.commitAll("db on plan medium")
	testenv.Eventually(t, 60*time.Second, 300*time.Millisecond, "db is ready on plan medium, notes answering throughout", func() error {
		if _, err := p.notes(); err != nil {
			t.Fatalf("notes stopped answering during the plan update: %v", err)
		}
		ss, err := p.services()
		if err != nil {
			return err
		}
		if err := readyPlan("medium", "notes")(ss["db"]); err != nil {
			return fmt.Errorf("%w: %+v", err, ss["db"])
		}
		return nil
	})
	if got, err := p.notes(); err != nil || !slices.Equal(got, []string{"first note"}) {
		t.Fatalf("notes after the plan update: %q, %v", got, err)
	}
	if name, limit := p.connLimit(t); name != database {
		t.Fatalf("the plan update made database %s (was %s)", name, database)
	} else if medium, _ := postgres.Limits(postgres.PlanMedium); limit != medium.Connections {
		t.Fatalf("database %s allows %d connections after the update, plan medium %d", name, limit, medium.Connections)
	}

	// Dropping db while notes still binds it is refused at the manifest.
	p.write(map[string]string{"services.yml": ""})
	refused := p.commitAll("drop db, still bound")
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the refusal shows in status", func() error {
		var st api.Status
		if err := p.cliJSON(&st, "status"); err != nil {
			return err
		}
		if len(st.Sources) != 1 {
			return fmt.Errorf("%d sources", len(st.Sources))
		}
		s := st.Sources[0]
		if s.LastSeen != refused || len(s.Errors) == 0 {
			return fmt.Errorf("source %+v", s)
		}
		e := s.Errors[0]
		if e.File != "apps/notes/manifest.yml" || e.Line < 1 || !strings.Contains(e.Message, `binds service "db"`) {
			return fmt.Errorf("error %+v, want apps/notes/manifest.yml:line saying notes binds db", e)
		}
		if s.LastApplied == refused {
			return errors.New("the refused commit was applied")
		}
		return nil
	})
	if out, err := p.cli("status"); err != nil || !strings.Contains(out, "apps/notes/manifest.yml:") {
		t.Fatalf("driftless status does not show the manifest's file:line: %v\n%s", err, out)
	}
	p.waitService(t, 5*time.Second, "db", "unchanged", readyPlan("medium", "notes"))
	if in, _, err := p.notesInfo(); err != nil || usesDB(in) != nil || in.Database.BindingGUID != bound.Database.BindingGUID {
		t.Fatalf("a refused commit disturbed notes: %+v, %v", in, err)
	}

	// Unbinding: the app rolls to an instance without a binding; db stays.
	p.write(map[string]string{"services.yml": pgServices("medium", ""), "apps/notes/manifest.yml": notesManifest()})
	p.commitAll("notes without db")
	p.waitNotesInfo(t, 90*time.Second, "notes runs without a binding", func(in notesInfo) error {
		if in.Database != nil || in.Source != "" || len(in.Bindings) != 0 {
			return errors.New("notes still has a binding")
		}
		return nil
	})
	p.waitService(t, 30*time.Second, "db", "bound to no app", readyPlan("medium"))
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the broker dropped the old binding's role", func() error {
		if p.roleExists(t, role) {
			return fmt.Errorf("role %s still exists", role)
		}
		return nil
	})
	if code, _, err := p.get(notesHost, "/notes"); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("GET /notes without a binding: %d, %v", code, err)
	}

	// Rebinding: a new binding, to the same database.
	p.write(map[string]string{"apps/notes/manifest.yml": notesManifest("db")})
	p.commitAll("notes bound to db again")
	rebound := p.waitNotesInfo(t, 90*time.Second, "notes uses db again", usesDB)
	if rebound.Database.BindingGUID == bound.Database.BindingGUID {
		t.Fatalf("rebinding kept binding %s", bound.Database.BindingGUID)
	}
	if rebound.Database.Plan != "medium" {
		t.Fatalf("the new binding's plan: %+v", rebound.Database)
	}
	p.waitService(t, 30*time.Second, "db", "bound to notes again", readyPlan("medium", "notes"))
	if name, _ := p.connLimit(t); name != database {
		t.Fatalf("rebinding made database %s (was %s)", name, database)
	}
	if got, err := p.notes(); err != nil || !slices.Equal(got, []string{"first note"}) {
		t.Fatalf("notes through the new binding: %q, %v (want the note written before)", got, err)
	}
	if err := p.postNote("second note"); err != nil {
		t.Fatal(err)
	}

	// Dropping db (and its binding): deprovisioned, its database dropped.
	p.write(map[string]string{"services.yml": "", "apps/notes/manifest.yml": notesManifest()})
	p.commitAll("drop db")
	testenv.Eventually(t, 60*time.Second, 300*time.Millisecond, "db is gone", func() error {
		ss, err := p.services()
		if err != nil {
			return err
		}
		if len(ss) != 0 {
			return fmt.Errorf("services: %+v", ss)
		}
		return nil
	})
	if dbs := p.brokerDatabases(t); len(dbs) != 0 {
		t.Fatalf("the broker's databases after db was dropped: %v", dbs)
	}
	p.waitNotesInfo(t, 30*time.Second, "notes runs without a binding", func(in notesInfo) error {
		if in.Database != nil {
			return errors.New("notes still has a binding")
		}
		return nil
	})
}

// TestServicesSecretsNeverShown: notes bound to db (postgres broker) and
// to api-keys, a user-provided service whose credentials were encrypted
// with `driftless secrets encrypt`: the app sees both (its /info names the
// user-provided credentials' keys and it uses db), yet neither the
// user-provided password nor db's binding password (read from the cell's
// bindings folder of the instance, as the app reads it) appears in dev's
// output, the platform's other logs (PostgreSQL's included), the app's
// logs, `driftless events/app/apps/services/status/brokers` (text and
// --json), the app's /info, or any Consul KV value under driftless/.
func TestServicesSecretsNeverShown(t *testing.T) {
	p := startDev(t, "--postgres")
	upPassword := fmt.Sprintf("s3cret-%016x", rand.Uint64())
	plainFile := filepath.Join(p.dir, "api-keys.yml")
	if err := os.WriteFile(plainFile, []byte("username: notes-user\npassword: "+upPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	enc, err := p.cli("secrets", "encrypt", plainFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(enc, upPassword) || !strings.HasPrefix(enc, "credentials: |\n  -----BEGIN AGE ENCRYPTED FILE-----") {
		t.Fatalf("driftless secrets encrypt printed:\n%s", enc)
	}
	if err := os.Remove(plainFile); err != nil {
		t.Fatal(err)
	}
	upEntry := "user-provided:\n- name: api-keys\n  tags: [keys]\n  " + strings.ReplaceAll(strings.TrimRight(enc, "\n"), "\n", "\n  ") + "\n"

	// An env variable of the manifest: stored sealed, never in clear.
	envName, envSecret := "NOTES_ENVSEAL_TOKEN", fmt.Sprintf("env-s3cret-%016x", rand.Uint64())
	p.addNotes()
	p.write(map[string]string{"apps/notes/manifest.yml": notesManifest("db", "api-keys") + "  env:\n    " + envName + ": " + envSecret + "\n",
		"services.yml": pgServices("small", upEntry)})
	commit := p.commitAll("notes bound to db and api-keys")
	p.waitApplied(t, commit, 30*time.Second)
	in := p.waitNotesInfo(t, 120*time.Second, "notes uses db and sees api-keys", func(in notesInfo) error {
		if err := usesDB(in); err != nil {
			return err
		}
		for _, b := range in.Bindings {
			if b.Name == "api-keys" && b.Label == "user-provided" && slices.Equal(b.CredentialKeys, []string{"password", "username"}) {
				return nil
			}
		}
		return errors.New("no user-provided binding api-keys with keys password, username")
	})
	if err := p.postNote("a note"); err != nil {
		t.Fatal(err)
	}
	p.waitService(t, 30*time.Second, "db", "ready and bound to notes", readyPlan("small", "notes"))
	p.waitService(t, 30*time.Second, "api-keys", "bound to notes", func(s api.Service) error {
		if !s.UserProvided || !slices.Equal(s.Bound, []string{"notes"}) {
			return errors.New("want user-provided, bound to notes")
		}
		return nil
	})

	// The passwords the instance got: db's from the cell's bindings folder
	// (what the app reads under /bindings), the user-provided one's too.
	secrets := map[string]string{"the user-provided password": upPassword, "the manifest's env value": envSecret}
	secrets["db's binding password"] = p.bindingFile(t, "db/password")
	if len(secrets["db's binding password"]) < 16 {
		t.Fatalf("db's binding password is only %d bytes", len(secrets["db's binding password"]))
	}
	if p.bindingFile(t, "api-keys/password") != upPassword {
		t.Fatalf("the instance's api-keys/password is not the encrypted one")
	}
	if raw, _, err := p.notesInfo(); err != nil || raw.Database.BindingGUID != in.Database.BindingGUID {
		t.Fatalf("/info: %+v, %v", raw, err)
	}

	// Where a password must never be: what the platform says and stores.
	outputs := map[string][]byte{}
	_, infoBody, err := p.notesInfo()
	if err != nil {
		t.Fatal(err)
	}
	outputs["the app's /info"] = infoBody
	for _, args := range [][]string{{"events"}, {"app", "notes"}, {"apps"}, {"services"}, {"status"}, {"brokers"}} {
		out, err := p.cli(append(args, "--json")...)
		if err != nil {
			t.Fatal(err)
		}
		outputs["driftless "+strings.Join(args, " ")+" --json"] = []byte(out)
		text, err := p.cli(args...)
		if err != nil {
			t.Fatal(err)
		}
		outputs["driftless "+strings.Join(args, " ")] = []byte(text)
	}
	kv := p.consulKV(t)
	if len(kv) == 0 {
		t.Fatal("no Consul KV under driftless/")
	}
	p.addStoredOutputs(t, outputs, kv)
	if _, ok := outputs["log postgres.log"]; !ok {
		t.Fatalf("no postgres.log among the platform's logs %v", slices.Sorted(maps.Keys(outputs)))
	}
	appLog, err := p.cli("logs", "notes", "--recent")
	if err != nil || !strings.Contains(appLog, "using binding db") {
		t.Fatalf("driftless logs notes --recent: %v\n%s", err, appLog)
	}
	outputs["driftless logs notes --recent"] = []byte(appLog)
	// The checks can fail: the outputs name what they should.
	if !bytes.Contains(outputs["driftless services --json"], []byte(`"api-keys"`)) ||
		!bytes.Contains(outputs["driftless events --json"], []byte("notes")) || !bytes.Contains(outputs["dev's output (dev.log)"], []byte("api-keys")) {
		t.Fatalf("the outputs checked do not even name the services:\n%s", outputs["driftless services --json"])
	}
	var anyBinding bool
	for k := range kv {
		anyBinding = anyBinding || strings.HasPrefix(k, catalog.BindingsPrefix)
	}
	if !anyBinding {
		t.Fatalf("no binding stored under %s in Consul KV: %v", catalog.BindingsPrefix, slices.Sorted(maps.Keys(kv)))
	}
	// The release's env is stored, sealed; its name is not in clear either.
	var sealedEnv bool
	for k, v := range kv {
		sealedEnv = sealedEnv || strings.HasPrefix(k, catalog.AllReleasesPrefix) && bytes.Contains(v, []byte(`"sealed_env":"v1:`))
		if bytes.Contains(v, []byte(envName)) {
			t.Errorf("the env variable's name %s is in clear in Consul KV %s", envName, k)
		}
	}
	if !sealedEnv {
		t.Fatalf("no release with a sealed env under %s in Consul KV: %v", catalog.AllReleasesPrefix, slices.Sorted(maps.Keys(kv)))
	}
	for what, secret := range secrets {
		for where, data := range outputs {
			if bytes.Contains(data, []byte(secret)) {
				t.Errorf("%s appears in %s", what, where)
			}
		}
	}
}
