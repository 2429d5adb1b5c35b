package journal_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/journal"
	"github.com/driftless/driftless/model"
)

type env struct {
	nats *testenv.NATS
	j    *journal.Journal
	cell *nats.Conn
	ctl  *nats.Conn
}

func start(t *testing.T, cfg journal.Config) *env {
	t.Helper()
	n := testenv.StartNATS(t)
	ctl := n.Connect(t, bus.Identity{Role: bus.RoleController})
	j, err := journal.New(ctl, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureSpace(context.Background(), "dev"); err != nil {
		t.Fatal(err)
	}
	if err := j.EnsureEvents(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &env{nats: n, j: j, ctl: ctl, cell: n.Connect(t, bus.Identity{Role: bus.RoleCell, Cell: "cell-1"})}
}

// write publishes lines as a cell does and waits until they are kept.
func (e *env) write(t *testing.T, lines ...model.LogLine) {
	t.Helper()
	for _, l := range lines {
		if err := bus.Publish(e.cell, bus.LogSubject(l), l); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.cell.Flush(); err != nil {
		t.Fatal(err)
	}
}

func appLines(from, to int, index int) []model.LogLine {
	var out []model.LogLine
	for i := from; i < to; i++ {
		out = append(out, model.LogLine{Time: time.Now().UTC(), Space: "dev", App: "hello", Source: model.LogApp, Index: index, Text: fmt.Sprintf("line %d", i)})
	}
	return out
}

func read(t *testing.T, j *journal.Journal, q journal.LogQuery) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	err := j.Logs(ctx, q, func(l model.LogLine) error {
		if l.Seq == 0 {
			t.Errorf("line %q has no seq", l.Text)
		}
		got = append(got, l.Text)
		return nil
	})
	if err != nil {
		t.Fatalf("Logs(%+v): %v", q, err)
	}
	return got
}

func waitKept(t *testing.T, j *journal.Journal, n int) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, 20*time.Millisecond, "lines kept", func() error {
		if got := read(t, j, journal.LogQuery{Space: "dev", App: "hello", Start: journal.Start{Last: 1 << 20}}); len(got) < n {
			return fmt.Errorf("%d lines kept, want %d", len(got), n)
		}
		return nil
	})
}

func TestLogsRead(t *testing.T) {
	e := start(t, journal.DefaultConfig())
	e.write(t, appLines(0, 50, 0)...)
	e.write(t, appLines(50, 60, 1)...)
	e.write(t, model.LogLine{Space: "dev", App: "hello", Source: model.LogStaging, Text: "staging"},
		model.LogLine{Space: "dev", App: "other", Source: model.LogApp, Text: "other app"})
	rtr := e.nats.Connect(t, bus.Identity{Role: bus.RoleRouter})
	line := model.LogLine{Space: "dev", App: "hello", Source: model.LogRouter, Index: 1, Text: "rtr"}
	if err := bus.Publish(rtr, bus.LogSubject(line), line); err != nil {
		t.Fatal(err)
	}
	_ = rtr.Flush()
	waitKept(t, e.j, 62)
	one := 1
	tests := []struct {
		name       string
		q          journal.LogQuery
		first, len int
		firstText  string
	}{
		{"last 5 of everything", journal.LogQuery{Start: journal.Start{Last: 5}}, 0, 5, "line 57"},
		{"last 3 of instance 0", journal.LogQuery{Index: new(int), Start: journal.Start{Last: 3}}, 0, 3, "line 47"},
		{"instance 1, app lines", journal.LogQuery{Index: &one, Source: model.LogApp, Start: journal.Start{Last: 100}}, 0, 10, "line 50"},
		{"router lines", journal.LogQuery{Source: model.LogRouter, Start: journal.Start{Last: 100}}, 0, 1, "rtr"},
		{"staging lines", journal.LogQuery{Source: model.LogStaging, Start: journal.Start{Last: 100}}, 0, 1, "staging"},
		{"more than kept", journal.LogQuery{Start: journal.Start{Last: 1000}}, 0, 62, "line 0"},
		{"none asked", journal.LogQuery{}, 0, 0, ""},
		{"an exact count", journal.LogQuery{Start: journal.Start{Last: 62}}, 0, 62, "line 0"},
		{"since a minute", journal.LogQuery{Start: journal.Start{Since: time.Now().Add(-time.Minute)}}, 0, 62, "line 0"},
		{"since later", journal.LogQuery{Start: journal.Start{Since: time.Now().Add(time.Minute)}}, 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Space, tt.q.App = "dev", "hello"
			got := read(t, e.j, tt.q)
			if len(got) != tt.len {
				t.Fatalf("read %d lines %v, want %d", len(got), got, tt.len)
			}
			if tt.len > 0 && got[0] != tt.firstText {
				t.Errorf("first line %q, want %q", got[0], tt.firstText)
			}
		})
	}
	// Resuming after a line's seq gives what follows it, nothing twice.
	var seqs []uint64
	_ = e.j.Logs(context.Background(), journal.LogQuery{Space: "dev", App: "hello", Start: journal.Start{Last: 4}}, func(l model.LogLine) error {
		seqs = append(seqs, l.Seq)
		return nil
	})
	if got := read(t, e.j, journal.LogQuery{Space: "dev", App: "hello", Start: journal.Start{After: seqs[1]}}); len(got) != 2 {
		t.Errorf("after seq %d: %v, want the last 2 lines", seqs[1], got)
	}
}

// TestFollowJoinsRecent: one cursor from the recent lines into the new
// ones, nothing lost or doubled while lines keep coming, and across a
// restart of the NATS server (the lines are on disk).
func TestFollowJoinsRecent(t *testing.T) {
	e := start(t, journal.DefaultConfig())
	e.write(t, appLines(0, 20, 0)...)
	waitKept(t, e.j, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- e.j.Logs(ctx, journal.LogQuery{Space: "dev", App: "hello", Start: journal.Start{Last: 10}, Follow: true}, func(l model.LogLine) error {
			mu.Lock()
			got = append(got, l.Text)
			mu.Unlock()
			return nil
		})
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "recent lines", func() error {
		if n := count(); n < 10 {
			return fmt.Errorf("%d lines", n)
		}
		return nil
	})
	e.write(t, appLines(20, 520, 0)...)
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, "followed lines", func() error {
		if n := count(); n < 510 {
			return fmt.Errorf("%d lines", n)
		}
		return nil
	})
	// Wait for both clients to have reconnected to the new server: right
	// after the restart they may still believe they are connected to the
	// old one, and a flush in flight then fails.
	cellBefore, ctlBefore := e.cell.Stats().Reconnects, e.ctl.Stats().Reconnects
	e.nats.Restart(t)
	testenv.Eventually(t, 10*time.Second, 50*time.Millisecond, "cell reconnected", func() error {
		if e.cell.Stats().Reconnects == cellBefore || e.ctl.Stats().Reconnects == ctlBefore ||
			!e.cell.IsConnected() || !e.ctl.IsConnected() {
			return fmt.Errorf("not reconnected")
		}
		return nil
	})
	e.write(t, appLines(520, 530, 0)...)
	testenv.Eventually(t, 15*time.Second, 50*time.Millisecond, "lines after the restart", func() error {
		if n := count(); n < 520 {
			return fmt.Errorf("%d lines", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Logs: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 520 {
		t.Fatalf("followed %d lines, want 520", len(got))
	}
	for i, text := range got {
		if want := fmt.Sprintf("line %d", i+10); text != want {
			t.Fatalf("line %d is %q, want %q (lost or doubled)", i, text, want)
		}
	}
	// Kept across the restart: the recent read sees everything.
	if all := read(t, e.j, journal.LogQuery{Space: "dev", App: "hello", Start: journal.Start{Last: 1000}}); len(all) != 530 {
		t.Errorf("after the restart %d lines are kept, want 530", len(all))
	}
}

func TestRetentionBySize(t *testing.T) {
	cfg := journal.DefaultConfig()
	cfg.MaxBytes = 64 << 10
	e := start(t, cfg)
	e.write(t, appLines(0, 2000, 0)...)
	time.Sleep(200 * time.Millisecond)
	got := read(t, e.j, journal.LogQuery{Space: "dev", App: "hello", Start: journal.Start{Last: 5000}})
	if len(got) == 0 || len(got) >= 2000 {
		t.Fatalf("kept %d of 2000 lines in 64 KiB, want some but not all", len(got))
	}
	if got[len(got)-1] != "line 1999" {
		t.Errorf("last kept line %q, want the newest", got[len(got)-1])
	}
}

func TestEvents(t *testing.T) {
	e := start(t, journal.DefaultConfig())
	evs := []model.Event{
		{Kind: model.EventCommitApplied, Space: "dev", Message: "commit abc"},
		{Kind: model.EventStaging, Space: "dev", App: "hello", Message: "staging"},
		{Kind: model.EventStarted, Space: "dev", App: "other", Message: "other app"},
		{Kind: model.EventStarted, Space: "prod", App: "hello", Message: "another space"},
		{Kind: model.EventTokenCreated, Message: "a token"},
	}
	for _, ev := range evs {
		if err := bus.Publish(e.ctl, bus.EventSubject(ev.Space, ev.App), ev); err != nil {
			t.Fatal(err)
		}
	}
	_ = e.ctl.Flush()
	tests := []struct {
		name string
		q    journal.EventQuery
		want []string
	}{
		{"an app's timeline with its space's commits", journal.EventQuery{Space: "dev", App: "hello"}, []string{"commit abc", "staging"}},
		{"a space", journal.EventQuery{Space: "dev"}, []string{"commit abc", "staging", "other app"}},
		{"everything", journal.EventQuery{}, []string{"commit abc", "staging", "other app", "another space", "a token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Last = 100
			testenv.Eventually(t, 5*time.Second, 20*time.Millisecond, "events", func() error {
				var got []string
				err := e.j.Events(context.Background(), tt.q, func(ev model.Event) error {
					got = append(got, ev.Message)
					return nil
				})
				if err != nil {
					return err
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					return fmt.Errorf("events %q, want %q", got, tt.want)
				}
				return nil
			})
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*journal.Config)
		ok   bool
	}{
		{"defaults", func(*journal.Config) {}, true},
		{"no age", func(c *journal.Config) { c.MaxAge = 0 }, false},
		{"no size", func(c *journal.Config) { c.MaxBytes = 0 }, false},
		{"no replica", func(c *journal.Config) { c.Replicas = 0 }, false},
		{"three replicas", func(c *journal.Config) { c.Replicas = 3 }, true},
	}
	for _, tt := range tests {
		c := journal.DefaultConfig()
		tt.mod(&c)
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v", tt.name, err)
		}
	}
}
