package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/secrets"
	"gopkg.in/yaml.v3"
)

// fakeAPI answers the controller API's paths with fixed JSON bodies (a
// status other than 200 when the body starts with a three-digit code and
// a space), and records the requests.
type fakeAPI struct {
	answers  map[string]string // "METHOD /path" → body
	requests []string          // "METHOD /path?query"
}

func (f *fakeAPI) start(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
		body, ok := f.answers[r.Method+" "+r.URL.Path]
		if !ok {
			http.Error(w, `{"error":"no such path in the fake"}`, http.StatusNotFound)
			return
		}
		code := http.StatusOK
		if len(body) > 4 && body[3] == ' ' && body[0] >= '1' && body[0] <= '5' {
			code = int(body[0]-'0')*100 + int(body[1]-'0')*10 + int(body[2]-'0')
			body = body[4:]
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// runCLI runs the driftless command line with args and returns what it
// printed on stdout.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

const appsJSON = `[
 {"name":"hello","space":"dev","desired":2,"running":2,"release":"0123456789abcdef","release_id":"r-42","commit":"0123456789abcdef",
  "source":"apps","state":"running","routes":["hello.apps.localhost"]},
 {"name":"clock","space":"dev","desired":1,"running":0,"release":"","release_id":"","commit":"fedcba9876543210",
  "source":"apps","state":"staging-failed","routes":[],"problems":["release r-7 (commit fedcba9876) failed to stage: no buildpack"]}
]`

const statusJSON = `{
 "controller":{"id":"ctl-2","role":"standby","leader":"ctl-1"},
 "policies":{"source":"built-in","files":["quotas.yml","routes.rego"],"errors":[]},
 "sources":[{"name":"apps","url":"/r/apps","branch":"main","space":"dev","last_seen":"aaaaaaaaaaaa1","last_applied":"bbbbbbbbbbbb2",
   "errors":[{"file":"apps/x/manifest.yml","line":3,"column":5,"message":"instances must be a number"}],
   "warnings":[{"message":"no apps"}]}],
 "cells":[{"id":"cell-a","address":"10.0.0.2","zone":"z1","capacity":{"memory_mb":2048,"disk_mb":1000,"instances":10},
   "instances":3,"memory_used_mb":768,"last_heartbeat":"2026-01-01T00:00:00Z","lost":true}],
 "problems":[{"space":"dev","app":"clock","message":"staging failed"}]
}`

func TestClientCommands(t *testing.T) {
	t.Setenv("DRIFTLESS_API", "")
	fake := &fakeAPI{answers: map[string]string{
		"GET /v1/apps":   appsJSON,
		"GET /v1/status": statusJSON,
		"GET /v1/events": `[{"time":"2026-01-01T10:00:00Z","kind":"placed","space":"dev","app":"hello","instance":"i-1","index":1,"message":"on cell-a"},
			{"time":"2026-01-01T10:00:01Z","kind":"commit-applied","message":"commit abc applied"}]`,
		"GET /v1/previews": `[{"name":"apps#pr-7","source":"apps","number":7,"branch":"feature","space":"dev-pr-7","head":"abcdef0123456789",
			"urls":["http://hello-pr-7.apps.localhost"],"state":"refused","reason":"m.yml:3: policy quota: too many instances",
			"expires":"2099-01-01T00:00:00Z"}]`,
		"GET /v1/apps/hello": `{"name":"hello","space":"dev-pr-7","desired":1,"running":1,"state":"running","routes":["hello-pr-7.apps.localhost"],"instances":[
			{"guid":"i-0","index":0,"state":"RUNNING","since":"2026-01-01T10:00:00Z","cell":"cell-a","ready":true,"memory_mb":256,"disk_mb":1024,
			 "usage":{"at":"2026-01-01T10:00:05Z","cpu_seconds":1.5,"cpu_percent":0.25,"memory_bytes":26528972,"disk_bytes":1258291}},
			{"guid":"i-1","index":1,"state":"RUNNING","since":"2026-01-01T10:00:00Z","cell":"cell-a","not_ready":true,"ready":false}]}`,
		"GET /v1/services": `[{"space":"dev","name":"db","service":"postgresql","plan":"small","broker":"pg","state":"ready","bound":["web"],"file":"services.yml","line":2},
			{"space":"dev","name":"cache","service":"redis","plan":"s","state":"failed","message":"no broker offers service redis","bound":[],"file":"services.yml","line":5}]`,
		"GET /v1/brokers": `[{"name":"pg","url":"http://127.0.0.1:9000","offerings":[{"name":"postgresql","bindable":true,"plans":["small","big"]}]},
			{"name":"down","offerings":[],"error":"connection refused"}]`,
		"POST /v1/sync": `{"sources":[{"name":"apps","url":"/r/apps","space":"dev","last_seen":"c1","last_applied":"c1","errors":[],"warnings":[]}],
			"converged":false,"message":"hello: 1/2 running"}`,
	}}
	addr := fake.start(t)
	tests := []struct {
		name     string
		args     []string
		want     []string // substrings of the output, in order
		wantCode int      // exit status carried by exitError (0: no error)
	}{
		{"apps table", []string{"apps"}, []string{
			"SPACE", "NAME", "STATE", "INSTANCES", "COMMIT", "RELEASE", "ROUTES",
			"hello", "running", "2/2", "0123456789", "r-42", "hello.apps.localhost",
			"clock", "staging-failed", "0/1", "-",
			"dev/clock: release r-7 (commit fedcba9876) failed to stage: no buildpack"}, 0},
		{"status", []string{"status"}, []string{
			"controller ctl-2 (standby; the leader is ctl-1)",
			"policies: built-in (quotas.yml, routes.rego)",
			"SOURCES", "apps  /r/apps (branch main, space dev)",
			"last seen aaaaaaaaaa, last applied bbbbbbbbbb",
			"commit aaaaaaaaaa refused:",
			"apps/x/manifest.yml:3:5: error: instances must be a number",
			"warning: no apps",
			"PROBLEMS", "dev/clock: staging failed",
			"CELLS", "cell-a", "10.0.0.2", "z1", "768/2048 MB", "LOST"}, 0},
		{"events", []string{"events", "--app", "hello"}, []string{"placed", "hello/1 on cell-a", "commit-applied", "commit abc applied"}, 0},
		{"previews", []string{"previews"}, []string{"SOURCE", "PR", "BRANCH", "HEAD", "STATE", "AGE", "EXPIRES", "URL",
			"apps", "7", "feature", "abcdef0123", "refused", "-", "in ", "http://hello-pr-7.apps.localhost",
			"apps#pr-7: m.yml:3: policy quota: too many instances"}, 0},
		{"previews --json", []string{"previews", "--json"}, []string{`"state": "refused"`, `"expires": "2099-01-01T00:00:00Z"`}, 0},
		{"app --preview", []string{"app", "hello", "--preview", "7"}, []string{"hello (space dev-pr-7)", "1/1 running", "hello-pr-7.apps.localhost"}, 0},
		{"app shows readiness", []string{"app", "hello"}, []string{"INSTANCES", "INDEX", "STATE", "0", "RUNNING", "cell-a",
			"1", "RUNNING (not ready)", "cell-a"}, 0},
		{"app shows usage", []string{"app", "hello"}, []string{"INDEX", "STATE", "SINCE", "CPU", "MEMORY", "DISK", "CELL",
			"0", "RUNNING", "0.2%", "25.3M of 256M", "1.2M of 1G", "cell-a",
			"1", "RUNNING (not ready)", "-", "-", "-", "cell-a"}, 0},
		{"app --json shows readiness", []string{"app", "hello", "--json"}, []string{`"index": 0`, `"ready": true`, `"index": 1`, `"ready": false`}, 0},
		{"app --json shows usage", []string{"app", "hello", "--json"}, []string{`"usage": {`, `"cpu_seconds": 1.5`, `"cpu_percent": 0.25`,
			`"memory_bytes": 26528972`, `"disk_bytes": 1258291`}, 0},
		{"services", []string{"services"}, []string{"SPACE", "NAME", "SERVICE", "PLAN", "BROKER", "STATE", "BOUND APPS",
			"dev", "db", "postgresql", "small", "pg", "ready", "web", "cache", "redis", "failed", "-",
			"dev/cache (services.yml:5): no broker offers service redis"}, 0},
		{"services --json", []string{"services", "--json"}, []string{`"state": "ready"`}, 0},
		{"brokers", []string{"brokers"}, []string{"BROKER", "URL", "SERVICE", "PLANS", "pg", "http://127.0.0.1:9000", "postgresql", "small, big",
			"down", "catalog unreadable: connection refused"}, 0},
		{"sync without wait", []string{"sync"}, []string{"SOURCES", "apps  /r/apps"}, 0},
		{"sync --wait not converged", []string{"sync", "--wait"}, []string{"SOURCES", "hello: 1/2 running"}, 2},
		{"sync --json", []string{"sync", "--json"}, []string{`"converged": false`}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, append(tt.args, "--api", addr)...)
			var ee exitError
			switch {
			case tt.wantCode == 0 && err != nil:
				t.Fatalf("error %v; output:\n%s", err, out)
			case tt.wantCode != 0 && (!errors.As(err, &ee) || ee.code != tt.wantCode):
				t.Fatalf("error %v, want exit status %d", err, tt.wantCode)
			}
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (in order):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
		})
	}
	for _, want := range []string{"GET /v1/events?app=hello&recent=1000", "GET /v1/apps/hello?space=dev-pr-7"} {
		if !slices.Contains(fake.requests, want) {
			t.Errorf("requests %q lack %q", fake.requests, want)
		}
	}
}

// TestClientJSON checks that --json prints what the API answered, as
// indented JSON, whatever the fields.
func TestClientJSON(t *testing.T) {
	fake := &fakeAPI{answers: map[string]string{"GET /v1/apps": appsJSON, "GET /v1/status": statusJSON}}
	addr := fake.start(t)
	t.Setenv("DRIFTLESS_API", addr) // the address from the environment
	for _, args := range [][]string{{"apps", "--json", "--space", "dev"}, {"status", "--json"}} {
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v: output is not JSON: %v\n%s", args, err, out)
		}
		if !strings.Contains(out, "\n  ") {
			t.Errorf("%v: output not indented:\n%s", args, out)
		}
	}
	if got := out(t, addr, "apps", "--json"); !strings.Contains(got, `"name": "hello"`) || !strings.Contains(got, `"release_id": "r-42"`) {
		t.Errorf("apps --json:\n%s", got)
	}
	if !slices.Contains(fake.requests, "GET /v1/apps?space=dev") {
		t.Errorf("--space not sent: %q", fake.requests)
	}
}

func out(t *testing.T, addr string, args ...string) string {
	t.Helper()
	s, err := runCLI(t, append(args, "--api", addr)...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return s
}

func TestClientErrors(t *testing.T) {
	fake := &fakeAPI{answers: map[string]string{
		"GET /v1/apps/nope": `404 {"error":"app dev/nope not found"}`,
		"GET /v1/status":    `500 upstream exploded`,
	}}
	addr := fake.start(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"API error body", []string{"app", "nope", "--api", addr}, "app dev/nope not found"},
		{"other error", []string{"status", "--api", addr}, "API answered 500 Internal Server Error: upstream exploded"},
		{"no controller", []string{"apps", "--api", "127.0.0.1:1"}, "is the controller running? set --api or DRIFTLESS_API"},
		{"missing argument", []string{"app", "--api", addr}, "accepts 1 arg(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestPreviewFlag: --preview N finds the space of pull request N's
// preview, and says so when there is none or several.
func TestPreviewFlag(t *testing.T) {
	t.Setenv("DRIFTLESS_API", "")
	fake := &fakeAPI{answers: map[string]string{
		"GET /v1/previews": `[{"name":"apps#pr-7","source":"apps","number":7,"space":"dev-pr-7"},
			{"name":"web#pr-7","source":"web","number":7,"space":"web-pr-7"},
			{"name":"apps#pr-8","source":"apps","number":8,"space":"dev-pr-8"}]`,
	}}
	addr := fake.start(t)
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"app", "hello", "--preview", "9"}, "no preview of pull request 9 is deployed"},
		{[]string{"app", "hello", "--preview", "7"}, "pull request 7 has previews in spaces dev-pr-7, web-pr-7: say which with --space"},
		{[]string{"logs", "hello", "--preview", "-1"}, "a pull request number is positive"},
		{[]string{"app", "hello", "--preview", "7", "--space", "web"}, "no such path in the fake"}, // found web-pr-7, asked the API
	}
	for _, tt := range tests {
		out, err := runCLI(t, append(tt.args, "--api", addr)...)
		if err == nil || !strings.Contains(err.Error()+out, tt.wantErr) {
			t.Errorf("%v: error %v, output %q; want %q", tt.args, err, out, tt.wantErr)
		}
	}
	if want := "GET /v1/apps/hello?space=web-pr-7"; !slices.Contains(fake.requests, want) {
		t.Errorf("requests %q lack %q", fake.requests, want)
	}
}

// TestSecretsEncrypt: the credentials given are encrypted to the
// platform's public key (fetched from the API) and printed as services.yml
// wants them; only the platform's keys open them.
func TestSecretsEncrypt(t *testing.T) {
	t.Setenv("DRIFTLESS_API", "")
	keys, err := secrets.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeAPI{answers: map[string]string{"GET /v1/secrets/public-key": `{"recipient":"` + keys.Recipient() + `"}`}}
	addr := fake.start(t)
	file := filepath.Join(t.TempDir(), "smtp.yml")
	if err := os.WriteFile(file, []byte("user: mailer\npassword: hunter2\nport: 587\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "secrets", "encrypt", file, "--api", addr)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "credentials: |\n  -----BEGIN AGE ENCRYPTED FILE-----") || strings.Contains(out, "hunter2") {
		t.Fatalf("output %q", out)
	}
	var decl struct {
		Credentials string `yaml:"credentials"`
	}
	if err := yaml.Unmarshal([]byte(out), &decl); err != nil {
		t.Fatal(err)
	}
	plain, err := keys.Decrypt(decl.Credentials)
	if err != nil || string(plain) != `{"password":"hunter2","port":587,"user":"mailer"}` {
		t.Fatalf("decrypted %q, %v", plain, err)
	}
	if _, err := runCLI(t, "secrets", "encrypt", "/nonexistent", "--api", addr); err == nil {
		t.Error("a missing file encrypted")
	}
}
