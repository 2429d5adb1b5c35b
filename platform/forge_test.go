package platform

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/driftless/driftless/forge"
	"github.com/driftless/driftless/model"
)

// TestNewForge: no API means no forge; an API needs a token (the flag or
// DRIFTLESS_FORGE_TOKEN) and a known kind; the errors never show a token.
func TestNewForge(t *testing.T) {
	tests := []struct {
		name    string
		cfg     ForgeConfig
		env     string
		wantErr string
		want    bool
	}{
		{"none", ForgeConfig{Kind: "github"}, "", "", false},
		{"no token", ForgeConfig{API: "http://127.0.0.1:1", Kind: "github"}, "", "needs a token", false},
		{"token from the environment", ForgeConfig{API: "http://127.0.0.1:1", Kind: "gitea"}, "env-secret", "", true},
		{"bad kind", ForgeConfig{API: "http://127.0.0.1:1", Kind: "bitbucket", Token: "flag-secret"}, "", "--forge", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(ForgeTokenEnv, tt.env)
			f, err := newForge(tt.cfg, slog.Default())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "secret") {
					t.Fatalf("error %v, want one saying %q and no token", err, tt.wantErr)
				}
				return
			}
			if err != nil || (f != nil) != tt.want {
				t.Fatalf("forge %v, %v; want one: %v", f, err, tt.want)
			}
		})
	}
}

// TestForgeRepo: a webhook's kind and path win; else the configured kind
// and the URL's path.
func TestForgeRepo(t *testing.T) {
	f := &forgeLink{kind: forge.GitHub}
	tests := []struct {
		ref  model.RepoRef
		want forge.Repo
	}{
		{model.RepoRef{URL: "https://github.com/octo/apps.git"}, forge.Repo{Kind: forge.GitHub, Path: "octo/apps"}},
		{model.RepoRef{URL: "file:///tmp/x/octo/apps.git", Forge: "gitlab", Path: "group/sub/apps", ProjectID: "7"}, forge.Repo{Kind: forge.GitLab, Path: "group/sub/apps", ProjectID: "7"}},
		{model.RepoRef{URL: "http://localhost:3000/o/r", Forge: "forgejo", Path: "o/r"}, forge.Repo{Kind: forge.Gitea, Path: "o/r"}},
	}
	for _, tt := range tests {
		if got := f.repo(tt.ref); got != tt.want {
			t.Errorf("repo(%+v) = %+v, want %+v", tt.ref, got, tt.want)
		}
	}
}
