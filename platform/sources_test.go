package platform

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSources(t *testing.T) {
	g := GitConfig{Space: "dev", Org: "acme", Poll: 3 * time.Second,
		Repos: []string{"/r/apps", "team-b=/r/other.git", "https://h/x=y.git", "BAD=/r/z", "/s/apps/"}}
	got, pol, err := sources(g, "/data")
	if err != nil {
		t.Fatal(err)
	}
	if pol != nil {
		t.Errorf("policy source %+v without --policies", pol)
	}
	want := []struct{ name, space, url string }{
		{"apps", "dev", "/r/apps"},
		{"other", "team-b", "/r/other.git"},
		{"x-y", "dev", "https://h/x=y.git"},
		{"z", "dev", filepath.Join(mustCwd(t), "BAD=/r/z")},
		{"apps-2", "dev", "/s/apps"},
	}
	if len(got) != len(want) {
		t.Fatalf("sources %+v", got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Space != w.space || g.URL != w.url || g.Org != "acme" ||
			g.Poll != 3*time.Second || g.Dir != filepath.Join("/data", "sources", w.name) {
			t.Errorf("source %d = %+v, want %+v", i, g, w)
		}
	}
}

func TestPolicySource(t *testing.T) {
	tests := []struct{ policies, url string }{
		{"https://h/policies.git", "https://h/policies.git"},
		{"pol", filepath.Join(mustCwd(t), "pol")},
	}
	for _, tt := range tests {
		_, pol, err := sources(GitConfig{Policies: tt.policies, Poll: time.Second}, "/data")
		if err != nil {
			t.Fatal(err)
		}
		if pol == nil || pol.Name != "policies" || pol.URL != tt.url || pol.Dir != "/data/sources/_policies" || pol.Poll != time.Second {
			t.Errorf("policies %q: source %+v", tt.policies, pol)
		}
	}
}

func mustCwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}
