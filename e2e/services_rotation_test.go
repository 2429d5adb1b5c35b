package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// notesInstances is notesManifest with n instances.
func notesInstances(n int, services ...string) string {
	return strings.Replace(notesManifest(services...), "- name: notes\n", fmt.Sprintf("- name: notes\n  instances: %d\n", n), 1)
}

// loadFailure is one failed request of a load loop.
type loadFailure struct {
	at   time.Time
	what string
}

// loadLoop sends GET /notes and POST /notes through the router from
// workers until stopped or until its time is up, counting every answer
// that is not 2xx and every transport error.
type loadLoop struct {
	p      *platform
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time

	mu       sync.Mutex
	requests int
	failures []loadFailure
	written  []string // notes whose POST answered 201
}

// startNotesLoad starts workers each asking GET /notes then POST /notes every
// pause, for at most max.
func startNotesLoad(p *platform, workers int, pause, max time.Duration) *loadLoop {
	ctx, cancel := context.WithTimeout(context.Background(), max)
	l := &loadLoop{p: p, cancel: cancel, start: time.Now()}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := range workers {
		l.wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				l.do(client, http.MethodGet, "", http.StatusOK)
				note := fmt.Sprintf("during-%d-%d", w, i)
				if l.do(client, http.MethodPost, note, http.StatusCreated) {
					l.mu.Lock()
					l.written = append(l.written, note)
					l.mu.Unlock()
				}
				select {
				case <-ctx.Done():
				case <-time.After(pause):
				}
			}
		})
	}
	return l
}

// do sends one request and counts it; it reports whether the answer was
// the one wanted.
func (l *loadLoop) do(client *http.Client, method, body string, want int) bool {
	req, err := http.NewRequest(method, "http://"+l.p.http+"/notes", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Host = notesHost
	resp, err := client.Do(req)
	what := ""
	if err != nil {
		what = fmt.Sprintf("%s /notes: %v", method, err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			what = fmt.Sprintf("%s /notes: %d %.200s", method, resp.StatusCode, b)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.requests++
	if what != "" {
		l.failures = append(l.failures, loadFailure{at: time.Now(), what: what})
	}
	return what == ""
}

// stop ends the loop and waits for its workers; it returns how long the
// loop ran.
func (l *loadLoop) stop() time.Duration {
	ran := time.Since(l.start)
	l.cancel()
	l.wg.Wait()
	return ran
}

// check fails t when any request failed, listing the first failures with
// the router's access log lines and events around them.
func (l *loadLoop) check(t *testing.T, what string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("%s: %d requests, %d failed, %d notes written", what, l.requests, len(l.failures), len(l.written))
	if l.requests < 100 {
		t.Errorf("%s: only %d requests: the load loop did not load", what, l.requests)
	}
	if len(l.failures) == 0 {
		return
	}
	for i, f := range l.failures {
		if i == 20 {
			t.Logf("… and %d more", len(l.failures)-20)
			break
		}
		t.Logf("failed at %s: %s", f.at.Format("15:04:05.000"), f.what)
	}
	if evs, err := l.p.client.Events(context.Background(), "dev", "notes"); err == nil {
		for _, e := range evs {
			t.Logf("event %s %s %s %s", e.Time.Format("15:04:05.000"), e.Kind, e.Instance, e.Message)
		}
	}
	if out, err := l.p.cli("logs", "notes", "--recent"); err == nil {
		var db []string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "database") || strings.Contains(line, "listening") {
				db = append(db, line)
			}
		}
		t.Logf("the app's log, its database errors and starts:\n%s", strings.Join(db, "\n"))
	}
	if data, err := os.ReadFile(filepath.Join(l.p.dir, "data", "logs", "access.log")); err == nil {
		var bad []string
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, notesHost) && !strings.Contains(line, " 200 ") && !strings.Contains(line, " 201 ") {
				bad = append(bad, line)
			}
		}
		if len(bad) > 20 {
			bad = bad[:20]
		}
		t.Logf("the router's access log, answers not 200/201:\n%s", strings.Join(bad, "\n"))
	}
	t.Errorf("%s: %d of %d requests failed, want none", what, len(l.failures), l.requests)
}

// bindingRoles is the binding role (db/username) of every instance that
// has a bindings folder on the cell.
func (p *platform) bindingRoles(t testing.TB) []string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(p.dir, "data", "agent", "bindings", "*", "db", "username"))
	var roles []string
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // the instance went meanwhile
		}
		if r := strings.TrimSpace(string(data)); !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	return roles
}

// waitNotesBinding waits until every one of 20 answers of /info comes from
// an instance using a binding of db other than every one of old, from 2
// instances; it returns that binding's guid.
func (p *platform) waitNotesBinding(t *testing.T, timeout time.Duration, old []string) string {
	t.Helper()
	var guid string
	testenv.Eventually(t, timeout, 300*time.Millisecond, "every instance of notes uses a new binding of db", func() error {
		guids, insts := map[string]bool{}, map[string]bool{}
		for range 20 {
			in, _, err := p.notesInfo()
			if err != nil {
				return err
			}
			if err := usesDB(in); err != nil {
				return err
			}
			if slices.Contains(old, in.Database.BindingGUID) {
				return fmt.Errorf("instance %s still uses binding %s", in.GUID, in.Database.BindingGUID)
			}
			guids[in.Database.BindingGUID], insts[in.GUID] = true, true
		}
		if len(guids) != 1 || len(insts) != 2 {
			return fmt.Errorf("bindings %v from instances %v, want one binding from 2 instances", keys(guids), keys(insts))
		}
		guid = keys(guids)[0]
		return nil
	})
	return guid
}

// waitRotated waits until `driftless events` shows db's binding rotated to
// generation gen and then the predecessor unbound; it returns the two
// events.
func (p *platform) waitRotated(t *testing.T, timeout time.Duration, gen int) (rotated, unbound model.Event) {
	t.Helper()
	testenv.Eventually(t, timeout, 500*time.Millisecond, fmt.Sprintf("events show the rotation to generation %d, then the old binding unbound", gen), func() error {
		var evs []model.Event
		if err := p.cliJSON(&evs, "events"); err != nil {
			return err
		}
		r := slices.IndexFunc(evs, func(e model.Event) bool {
			return e.Kind == model.EventServiceBound && e.App == "notes" && strings.Contains(e.Message, fmt.Sprintf("rotated (generation %d)", gen))
		})
		if r < 0 {
			return errors.New("no rotation event")
		}
		u := slices.IndexFunc(evs, func(e model.Event) bool {
			return e.Kind == model.EventServiceUnbound && e.App == "notes" && strings.Contains(e.Message, fmt.Sprintf("(generation %d)", gen))
		})
		if u < 0 {
			return fmt.Errorf("rotated at %s, the old binding not unbound yet", evs[r].Time.Format("15:04:05.000"))
		}
		if evs[u].Time.Before(evs[r].Time) {
			return fmt.Errorf("unbound (%s) before rotated (%s)", evs[u].Time, evs[r].Time)
		}
		rotated, unbound = evs[r], evs[u]
		return nil
	})
	return rotated, unbound
}

// TestServiceRotation: notes (2 instances) bound to db (postgresql, plan
// medium: 20 connections, room for four instances' pools while old and new
// run side by side) serves a load loop of 20 workers through the router
// (GET and POST /notes) while a commit of rotation: 1 rotates db's
// binding: every instance ends up on a new binding_guid, `driftless events`
// shows the rotation and then the old binding unbound, the old binding's
// PostgreSQL role is dropped — and not one request failed, and every note
// written before and during the rotation is read back. Then rotate-every:
// 20s rotates it again by itself, twice, under the same load.
func TestServiceRotation(t *testing.T) {
	p := startDev(t, "--postgres")
	p.addNotes()
	p.write(map[string]string{"apps/notes/manifest.yml": notesInstances(2, "db"), "services.yml": pgServices("medium", "")})
	p.waitApplied(t, p.commitAll("notes ×2, bound to db"), 30*time.Second)
	p.waitService(t, 60*time.Second, "db", "ready and bound to notes", readyPlan("medium", "notes"))
	first := p.waitNotesBinding(t, 120*time.Second, nil)
	roles := p.bindingRoles(t)
	if len(roles) != 1 || !p.roleExists(t, roles[0]) {
		t.Fatalf("the instances' binding roles %v, want one that PostgreSQL has", roles)
	}
	oldRole := roles[0]
	var before []string
	for i := range 5 {
		note := fmt.Sprintf("before-%d", i)
		if err := p.postNote(note); err != nil {
			t.Fatal(err)
		}
		before = append(before, note)
	}

	// rotation: 1 under load.
	load := startNotesLoad(p, 20, 100*time.Millisecond, 90*time.Second)
	time.Sleep(2 * time.Second) // the loop runs before the commit
	start := time.Now()
	p.write(map[string]string{"services.yml": pgServices("medium", "  rotation: 1\n")})
	p.commitAll("rotate db's credentials")
	if _, err := p.client.Sync(context.Background(), false, 0); err != nil {
		t.Fatal(err)
	}
	second := p.waitNotesBinding(t, 90*time.Second, []string{first})
	rotated, unbound := p.waitRotated(t, 60*time.Second, 1)
	testenv.Eventually(t, 30*time.Second, 300*time.Millisecond, "the old binding's role is dropped", func() error {
		if p.roleExists(t, oldRole) {
			return fmt.Errorf("role %s still exists", oldRole)
		}
		return nil
	})
	took := time.Since(start)
	time.Sleep(2 * time.Second) // the loop runs on past the unbind
	ran := load.stop()
	t.Logf("rotation 1: binding %s → %s; commit to every instance on the new binding and the old one unbound: %s "+
		"(events: rotated %s after the commit, unbound %s after that); the loop ran %s",
		first, second, took.Round(time.Millisecond), rotated.Time.Sub(start).Round(time.Millisecond),
		unbound.Time.Sub(rotated.Time).Round(time.Millisecond), ran.Round(time.Millisecond))
	if roles := p.bindingRoles(t); len(roles) != 1 || roles[0] == oldRole || !p.roleExists(t, roles[0]) {
		t.Errorf("the instances' binding roles after the rotation %v (old %s), want one new one that PostgreSQL has", roles, oldRole)
	}
	load.check(t, "rotation 1")
	written := append(before, load.written...)
	checkNotes(t, p, written)

	// rotate-every: 20s under load: two more rotations by themselves.
	load = startNotesLoad(p, 20, 100*time.Millisecond, 150*time.Second)
	start = time.Now()
	p.write(map[string]string{"services.yml": pgServices("medium", "  rotation: 1\n  rotate-every: 20s\n")})
	p.commitAll("rotate db's credentials every 20s")
	if _, err := p.client.Sync(context.Background(), false, 0); err != nil {
		t.Fatal(err)
	}
	third := p.waitNotesBinding(t, 90*time.Second, []string{first, second})
	r3, u3 := p.waitRotated(t, 60*time.Second, 2)
	fourth := p.waitNotesBinding(t, 90*time.Second, []string{first, second, third})
	r4, u4 := p.waitRotated(t, 60*time.Second, 3)
	// Stop rotating before the loop stops (the test's end must not race one).
	p.write(map[string]string{"services.yml": pgServices("medium", "  rotation: 1\n")})
	p.waitApplied(t, p.commitAll("stop rotating"), 30*time.Second)
	ran = load.stop()
	t.Logf("rotate-every 20s: bindings %s, %s; rotated %s and %s after the commit (unbound %s and %s after each); the loop ran %s",
		third, fourth, r3.Time.Sub(start).Round(time.Millisecond), r4.Time.Sub(start).Round(time.Millisecond),
		u3.Time.Sub(r3.Time).Round(time.Millisecond), u4.Time.Sub(r4.Time).Round(time.Millisecond), ran.Round(time.Millisecond))
	// A binding's age is counted from when its bind began, the event is
	// recorded once it is stored: the gap may be a little under 20s.
	if gap := r4.Time.Sub(r3.Time); gap < 18*time.Second {
		t.Errorf("rotations 3 and 4 %s apart, want about rotate-every's 20s", gap)
	}
	load.check(t, "rotate-every")
	checkNotes(t, p, append(written, load.written...))
}

// checkNotes fails t unless every note of want is among the app's notes.
func checkNotes(t *testing.T, p *platform, want []string) {
	t.Helper()
	got, err := p.notes()
	if err != nil {
		t.Fatalf("reading the notes back: %v", err)
	}
	have := map[string]bool{}
	for _, n := range got {
		have[n] = true
	}
	var missing []string
	for _, n := range want {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d notes written are not read back: %.20q", len(missing), len(want), missing)
	}
	t.Logf("%d notes read back, all %d written found", len(got), len(want))
}
