package agents

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/driftless/driftless/agents/network"
	"github.com/driftless/driftless/agents/runtime"
	"github.com/driftless/driftless/model"
)

// testBindings are a broker's binding (nested credentials, a binding
// name, a provider) and a user-provided one (a syslog drain).
func testBindings() []model.Binding {
	return []model.Binding{
		{Label: "user-provided", Name: "logs", BindingGUID: "b-2", InstanceName: "logs", InstanceGUID: "i-2",
			Credentials: map[string]any{"token": "ups-s3cret"}, SyslogDrainURL: "syslog-tls://logs.example:6514"},
		{Label: "postgres", Name: "db", BindingName: "db", BindingGUID: "b-1", InstanceName: "orders-db", InstanceGUID: "i-1",
			Plan: "small", Provider: "driftless", Tags: []string{"sql", "postgres"},
			Credentials: map[string]any{"uri": "postgres://u:pg-s3cret@db:5432/orders", "port": 5432.0,
				"tls": map[string]any{"ca": "CA-PEM", "verify": true}}},
	}
}

// wantVcapServices is VCAP_SERVICES of testBindings, byte for byte.
const wantVcapServices = `{"postgres":[{"label":"postgres","name":"db","binding_name":"db","binding_guid":"b-1",` +
	`"instance_name":"orders-db","instance_guid":"i-1","plan":"small","provider":"driftless","tags":["sql","postgres"],` +
	`"credentials":{"port":5432,"tls":{"ca":"CA-PEM","verify":true},"uri":"postgres://u:pg-s3cret@db:5432/orders"},` +
	`"syslog_drain_url":null,"volume_mounts":[]}],` +
	`"user-provided":[{"label":"user-provided","name":"logs","binding_name":null,"binding_guid":"b-2",` +
	`"instance_name":"logs","instance_guid":"i-2","plan":"","provider":null,"tags":[],"credentials":{"token":"ups-s3cret"},` +
	`"syslog_drain_url":"syslog-tls://logs.example:6514","volume_mounts":[]}]}`

// secrets are the credential values of testBindings that must never be
// kept or logged.
var secrets = []string{"pg-s3cret", "ups-s3cret", "CA-PEM"}

func TestVcapServices(t *testing.T) {
	tests := []struct {
		name     string
		bindings []model.Binding
		want     string
	}{
		{name: "none", want: `{}`},
		{name: "two labels, nulls and empty lists", bindings: testBindings(), want: wantVcapServices},
		{name: "one label, sorted by name", bindings: []model.Binding{
			{Label: "redis", Name: "b", Credentials: map[string]any{}},
			{Label: "redis", Name: "a", Tags: []string{"kv"}},
		}, want: `{"redis":[` +
			`{"label":"redis","name":"a","binding_name":null,"binding_guid":"","instance_name":"","instance_guid":"","plan":"","provider":null,"tags":["kv"],"credentials":{},"syslog_drain_url":null,"volume_mounts":[]},` +
			`{"label":"redis","name":"b","binding_name":null,"binding_guid":"","instance_name":"","instance_guid":"","plan":"","provider":null,"tags":[],"credentials":{},"syslog_drain_url":null,"volume_mounts":[]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := vcapServices(tt.bindings)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("VCAP_SERVICES\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestSafeFileName(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"uri", true},
		{"ca.crt", true},
		{"..hidden", true},
		{strings.Repeat("k", 255), true},
		{"", false},
		{".", false},
		{"..", false},
		{"a/b", false},
		{"../etc", false},
		{"nul\x00", false},
		{strings.Repeat("k", 256), false},
	}
	for _, tt := range tests {
		if got := safeFileName(tt.name); got != tt.want {
			t.Errorf("safeFileName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBindingFiles(t *testing.T) {
	tests := []struct {
		name  string
		b     model.Binding
		want  map[string]string
		warns []string // keys named in the warnings
	}{
		{name: "strings as they are, the rest as JSON", b: testBindings()[1], want: map[string]string{
			"type": "postgres", "provider": "driftless", "uri": "postgres://u:pg-s3cret@db:5432/orders",
			"port": "5432", "tls": `{"ca":"CA-PEM","verify":true}`}},
		{name: "no provider", b: model.Binding{Label: "user-provided", Name: "x", Credentials: map[string]any{"n": nil, "list": []any{"a", 1.0}}},
			want: map[string]string{"type": "user-provided", "n": "null", "list": `["a",1]`}},
		{name: "unsafe keys left out", b: model.Binding{Label: "l", Name: "x", Credentials: map[string]any{
			"ok": "v", "../escape": "s3cret-1", "": "s3cret-2", "a/b": "s3cret-3", "nul\x00": "s3cret-4",
			strings.Repeat("k", 256): "s3cret-5", "type": "s3cret-6"}},
			want:  map[string]string{"type": "l", "ok": "v"},
			warns: []string{`"../escape"`, `""`, `"a/b"`, `"nul\x00"`, `"` + strings.Repeat("k", 256) + `"`, `"type"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, warns := bindingFiles(tt.b)
			got := map[string]string{}
			for k, v := range files {
				got[k] = string(v)
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("files %q, want %q", got, tt.want)
			}
			if len(warns) != len(tt.warns) {
				t.Fatalf("warnings %q, want one per %q", warns, tt.warns)
			}
			all := strings.Join(warns, "\n")
			for _, k := range tt.warns {
				if !strings.Contains(all, k) {
					t.Errorf("no warning names %s: %q", k, warns)
				}
			}
			if strings.Contains(all, "s3cret") {
				t.Errorf("a warning shows a value: %q", warns)
			}
		})
	}
}

func TestWithVcapServices(t *testing.T) {
	base := []string{"PORT=8080", "A=" + strings.Repeat("a", 1000)}
	tests := []struct {
		name     string
		services int // bytes
		want     bool
	}{
		{name: "small", services: 2, want: true},
		{name: "fills the limit", services: model.MaxEnvBytes - envBytes(base) - len("VCAP_SERVICES=") - 1, want: true},
		{name: "one byte over", services: model.MaxEnvBytes - envBytes(base) - len("VCAP_SERVICES="), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, ok := withVcapServices(slices.Clone(base), []byte(strings.Repeat("x", tt.services)))
			if ok != tt.want || (len(env) == len(base)+1) != tt.want || envBytes(env) > model.MaxEnvBytes {
				t.Fatalf("ok %v, %d variables (%d bytes), want ok %v", ok, len(env), envBytes(env), tt.want)
			}
		})
	}
}

// TestWriteBindings: one folder per binding, the instance user's only;
// a binding named unsafely or twice is left out; what was there before
// is replaced.
func TestWriteBindings(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "guid")
	if err := os.MkdirAll(filepath.Join(dir, "stale"), 0o700); err != nil {
		t.Fatal(err)
	}
	bs := append(testBindings(), model.Binding{Label: "l", Name: "db"}, model.Binding{Label: "l", Name: ".."})
	warns, err := writeBindings(dir, bs, model.VcapUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 2 || !strings.Contains(warns[0], `"db" is named twice`) || !strings.Contains(warns[1], `".."`) {
		t.Fatalf("warnings %q", warns)
	}
	var got []string
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, p)
		got = append(got, rel+" "+fi.Mode().String()+" "+strconv.Itoa(int(st.Uid))+":"+strconv.Itoa(int(st.Gid)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{". dr-x------ 2000:2000",
		"db dr-x------ 2000:2000", "db/port -r-------- 2000:2000", "db/provider -r-------- 2000:2000",
		"db/tls -r-------- 2000:2000", "db/type -r-------- 2000:2000", "db/uri -r-------- 2000:2000",
		"logs dr-x------ 2000:2000", "logs/token -r-------- 2000:2000", "logs/type -r-------- 2000:2000"}
	if !slices.Equal(got, want) {
		t.Fatalf("files\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestBindingsLifecycle (on fakes): the bindings folder is made before the
// container and given as its read-only /bindings, the record keeps no
// binding, an adopted instance keeps its folder until its stop, and a
// leftover folder of no instance is removed.
func TestBindingsLifecycle(t *testing.T) {
	c := newTestCell(t)
	run := testRun()
	run.Bindings = testBindings()
	c.mu.Lock()
	err := c.acceptLocked(testRef("i1"), run)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	c.waitState(t, "i1", model.StateRunning)
	dir := c.bindingsDir("i1")
	if data, err := os.ReadFile(filepath.Join(dir, "db", "uri")); err != nil || string(data) != "postgres://u:pg-s3cret@db:5432/orders" {
		t.Fatalf("db/uri: %q, %v", data, err)
	}
	data, err := os.ReadFile(c.recordPath("i1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(data), s) {
			t.Fatalf("the record holds a credential: %s", data)
		}
	}

	// An agent restart: the next agent adopts the instance and keeps its
	// folder; a folder of no instance goes.
	c.cancel()
	c.wg.Wait()
	if err := os.MkdirAll(c.bindingsDir("gone"), 0o700); err != nil {
		t.Fatal(err)
	}
	next := newTestCell(t)
	next.cfg.DataDir = c.cfg.DataDir
	next.engine = c.engine
	next.runner.Engine = c.engine
	if err := next.adopt(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st, _ := next.state("i1"); st != model.StateRunning {
		t.Fatalf("adopted instance %s", st)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("adoption lost the bindings: %v", err)
	}
	if _, err := os.Stat(next.bindingsDir("gone")); !os.IsNotExist(err) {
		t.Fatalf("leftover bindings kept: %v", err)
	}
	next.stop("i1")
	waitFor(t, "i1 forgotten", func() bool { st, _ := next.state("i1"); return st == "" })
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the stop left the bindings: %v", err)
	}
}

// TestSpecBindings: the container gets SERVICE_BINDING_ROOT, VCAP_SERVICES
// unless it does not fit, and its bindings read-only at /bindings.
func TestSpecBindings(t *testing.T) {
	c := newTestCell(t)
	att := &network.Attachment{IP: "10.0.0.2"}
	tests := []struct {
		name     string
		services []byte
		want     bool
	}{
		{name: "none", services: []byte("{}"), want: true},
		{name: "too large", services: []byte(strings.Repeat("x", model.MaxEnvBytes)), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, ok := c.spec(testRef("i1"), testRun(), 61000, att, tt.services)
			hasServices := slices.Contains(spec.Env, "VCAP_SERVICES="+string(tt.services))
			if ok != tt.want || hasServices != tt.want || !slices.Contains(spec.Env, "SERVICE_BINDING_ROOT=/bindings") {
				t.Fatalf("ok %v, VCAP_SERVICES %v, want %v; env has SERVICE_BINDING_ROOT: %v", ok, hasServices, tt.want,
					slices.Contains(spec.Env, "SERVICE_BINDING_ROOT=/bindings"))
			}
			want := []runtime.Mount{{Source: c.bindingsDir("i1"), Destination: "/bindings", ReadOnly: true}}
			if !slices.Equal(spec.Mounts, want) {
				t.Fatalf("mounts %+v, want %+v", spec.Mounts, want)
			}
		})
	}
}

// owner is fi's user and group.
func owner(fi os.FileInfo) (int, int) {
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

// TestBindingsWarnings (on fakes): a VCAP_SERVICES too large for the
// environment is left out and a credential with an unsafe name left out of
// the files, each said in the instance's log (CELL) and the cell's, by
// name, never by value; the instance still starts.
func TestBindingsWarnings(t *testing.T) {
	c := newTestCell(t)
	var logs lockedBuffer
	c.log = slog.New(slog.NewTextHandler(&logs, nil))
	run := testRun()
	run.Bindings = []model.Binding{{Label: "big", Name: "big", Credentials: map[string]any{
		"blob": strings.Repeat("x", model.MaxEnvBytes), "../up": "ups-s3cret"}}}
	c.mu.Lock()
	err := c.acceptLocked(testRef("i1"), run)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	c.waitState(t, "i1", model.StateRunning)
	cell := strings.Join(c.pub.logLines(model.LogCell), "\n")
	for _, want := range []string{`credential "../up" is no safe file name`, "VCAP_SERVICES (", "is left out; read the bindings from the files"} {
		if !strings.Contains(cell, want) {
			t.Errorf("no warning %q in the instance's log: %q", want, cell)
		}
	}
	for _, want := range []string{"../up", "is no safe file name", "VCAP_SERVICES (", "is left out; read the bindings from the files"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no warning %q in the cell's log: %q", want, logs.String())
		}
	}
	if strings.Contains(cell+logs.String(), "ups-s3cret") {
		t.Errorf("a warning shows a credential: %q", cell)
	}
	if data, err := os.ReadFile(filepath.Join(c.bindingsDir("i1"), "big", "blob")); err != nil || len(data) != model.MaxEnvBytes {
		t.Fatalf("big/blob: %d bytes, %v", len(data), err)
	}
}
