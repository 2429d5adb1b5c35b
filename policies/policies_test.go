package policies

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func app(name string, n int, mb int64, routes ...string) App {
	return App{Name: name, Instances: n, MemoryMB: mb, Routes: routes, File: "apps/" + name + "/manifest.yml", Line: 3}
}

// TestDefaultBundle: the built-in quotas (4 GB, 40 instances, 2 GB per
// instance, 100 routes per space).
func TestDefaultBundle(t *testing.T) {
	set, err := Default(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   Input
		want []string // substrings, one per violation, in order
	}{
		{"small space", Input{Space: "dev", Apps: []App{app("a", 2, 256, "a.apps.localhost")}}, nil},
		{"empty space", Input{Space: "dev"}, nil},
		{"memory total", Input{Space: "dev", Apps: []App{app("a", 10, 512)}}, []string{"would use 5120 MB of memory (instances × memory); its quota is 4096 MB"}},
		{"instances total", Input{Space: "dev", Apps: []App{app("a", 30, 64), app("b", 11, 64)}}, []string{"would run 41 instances; its quota is 40"}},
		{"instance memory", Input{Space: "dev", Apps: []App{app("fat", 1, 3072)}}, []string{"app fat asks for 3072 MB per instance; the space allows at most 2048 MB"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := set.Evaluate(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != len(tt.want) {
				t.Fatalf("violations %+v, want %d", vs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(vs[i].Message, w) || vs[i].Policy != "quota" {
					t.Errorf("violation %+v, want %q", vs[i], w)
				}
			}
		})
	}
	vs, _ := set.Evaluate(context.Background(), Input{Space: "dev", Apps: []App{app("fat", 1, 3072)}})
	if vs[0].App != "fat" || vs[0].File != "apps/fat/manifest.yml" || vs[0].Line != 3 {
		t.Errorf("violation not located at the app's manifest: %+v", vs[0])
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"syntax error", fstest.MapFS{"quota.rego": {Data: []byte("package driftless.quota\n\ndeny contains v if {\n  v := \n}\n")}}, "quota.rego:"},
		{"compile error", fstest.MapFS{"x.rego": {Data: []byte("package driftless.x\n\ndeny contains v if {\n  v := undefined_function(1)\n}\n")}}, "x.rego:4:"},
		{"bad quota size", fstest.MapFS{"q.rego": {Data: []byte("package driftless.q\n")}, "quotas.yml": {Data: []byte("default:\n  memory: lots\n")}}, "quotas.yml: default.memory"},
		{"bad yaml", fstest.MapFS{"q.rego": {Data: []byte("package driftless.q\n")}, "quotas.yml": {Data: []byte("default: [\n")}}, "quotas.yml"},
		{"no policy", fstest.MapFS{"domains.yml": {Data: []byte("allowed: []\n")}}, "no .rego policy and no quotas.yml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(context.Background(), tt.files)
			var le *LoadError
			if !errors.As(err, &le) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want a LoadError containing %q", err, tt.want)
			}
		})
	}
}

// TestQuotasAlone: a policy source with quotas.yml and no .rego file
// applies the built-in rules to its quotas (not the built-in quotas).
func TestQuotasAlone(t *testing.T) {
	set, err := Load(context.Background(), fstest.MapFS{"quotas.yml": {Data: []byte("default:\n  instances: 3\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(set.Files, "quotas.yml") || !slices.ContainsFunc(set.Files, func(f string) bool { return strings.HasPrefix(f, "built-in:") }) {
		t.Errorf("files %v: want quotas.yml and the built-in rules", set.Files)
	}
	tests := []struct {
		instances int
		denied    bool
	}{{3, false}, {4, true}}
	for _, tt := range tests {
		vs, err := set.Evaluate(context.Background(), Input{Space: "dev", Apps: []App{{Name: "web", Instances: tt.instances, MemoryMB: 64}}})
		if err != nil {
			t.Fatal(err)
		}
		if (len(vs) > 0) != tt.denied {
			t.Errorf("%d instances: violations %+v, want denied %v", tt.instances, vs, tt.denied)
		}
	}
}

// TestRegoTests runs the Rego unit tests of the built-in bundle and of
// examples/policies, as `driftless policy test` does.
func TestRegoTests(t *testing.T) {
	for _, dir := range []string{"bundle", "../examples/policies"} {
		t.Run(dir, func(t *testing.T) {
			results, coverage, err := RunTests(context.Background(), os.DirFS(dir))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range results {
				if !r.Pass {
					t.Errorf("%s (%s:%d) failed %s", r.Name, r.File, r.Line, r.Error)
				}
			}
			if coverage < 50 {
				t.Errorf("coverage %.0f%%", coverage)
			}
			t.Logf("%d tests, coverage %.1f%%", len(results), coverage)
		})
	}
}

// BenchmarkEvaluate decides on a space of 1,000 apps (the whole desired
// state, as a commit is checked) and reports the time per app.
func BenchmarkEvaluate(b *testing.B) {
	set, err := Default(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 1000} {
		in := Input{Space: "dev"}
		for i := range n {
			in.Apps = append(in.Apps, app("a"+string(rune('a'+i%26))+strings.Repeat("x", i%7), 1, 1, "a.apps.localhost"))
		}
		b.Run(map[int]string{1: "1-app", 1000: "1000-apps"}[n], func(b *testing.B) {
			var took []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := set.Evaluate(context.Background(), in); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(t0))
			}
			slices.Sort(took)
			p99 := took[len(took)*99/100]
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/app")
			b.ReportMetric(float64(p99.Microseconds())/float64(n), "p99-µs/app")
		})
	}
}

// TestEnforcementAndDataFiles: quotas.yml's enforcement per space, and
// other data files at the root reach policies as data.<name>.
func TestEnforcementAndDataFiles(t *testing.T) {
	set, err := Load(context.Background(), fstest.MapFS{
		"quotas.yml":  {Data: []byte("default:\n  enforcement: per-app\nspaces:\n  strict: {enforcement: space}\n")},
		"domains.yml": {Data: []byte("allowed: [apps.localhost]\n")},
		"routes.rego": {Data: []byte(`package driftless.routes

import rego.v1

deny contains v if {
	some a in input.apps
	some r in a.routes
	not endswith(r, data.domains.allowed[0])
	v := {"app": a.name, "msg": sprintf("%s is off the allowed domain", [r])}
}
`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !set.PerApp("dev") || set.PerApp("strict") {
		t.Errorf("PerApp(dev) = %v, PerApp(strict) = %v; want true, false", set.PerApp("dev"), set.PerApp("strict"))
	}
	vs, err := set.Evaluate(context.Background(), Input{Space: "dev", Apps: []App{app("ok", 1, 1, "ok.apps.localhost"), app("bad", 1, 1, "bad.example.com")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].App != "bad" || vs[0].Policy != "routes" {
		t.Fatalf("violations %+v, want one for bad", vs)
	}
}
