package reconciler

import (
	"context"
	"log/slog"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/driftless/driftless/reconciler/source"
)

func TestTriggerMatchesSourcesByURL(t *testing.T) {
	dir := t.TempDir()
	newSource := func(name, url string) *source.Source {
		t.Helper()
		src, err := source.New(source.Config{Name: name, URL: url, Dir: filepath.Join(dir, name)})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	c := &Controller{log: slog.New(slog.DiscardHandler)}
	for _, s := range []struct{ name, url string }{
		{"apps", "https://github.com/octo/apps.git"},
		{"private", "https://deploy:hunter2@git.example.com/team/apps"}, // credentials redacted, then dropped
		{"local", "/srv/repos/local"},
		{"bare", "file:///srv/repos/bare.git"},
	} {
		src := newSource(s.name, s.url)
		c.sources = append(c.sources, &sourceEntry{name: s.name, src: src})
	}
	c.sources = append(c.sources, &sourceEntry{name: "unit-test"}) // no source behind it
	c.policySrc = newSource("policies", "https://github.com/octo/policies")

	tests := []struct {
		name string
		urls []string
		want []string
	}{
		{"github urls", []string{"https://github.com/octo/apps", "git@github.com:octo/apps.git"}, []string{"apps"}},
		{"host case and trailing slash", []string{"https://GitHub.com/octo/apps/"}, []string{"apps"}},
		{"credentials never compared", []string{"https://git.example.com/team/apps.git"}, []string{"private"}},
		{"a path source by its file URL", []string{"file:///srv/repos/local"}, []string{"local"}},
		{"a file URL source", []string{"file:///srv/repos/bare"}, []string{"bare"}},
		{"policy source", []string{"https://github.com/octo/policies.git"}, []string{"policies"}},
		{"several", []string{"https://github.com/octo/apps.git", "https://github.com/octo/policies"}, []string{"apps", "policies"}},
		{"path case matters", []string{"https://github.com/octo/Apps"}, nil},
		{"another repository", []string{"https://github.com/octo/other"}, nil},
		{"none", nil, nil},
	}
	for _, tt := range tests {
		if got := c.Trigger(context.Background(), tt.urls); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: Trigger(%q) = %q, want %q", tt.name, tt.urls, got, tt.want)
		}
	}
}
