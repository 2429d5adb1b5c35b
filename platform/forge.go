package platform

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/driftless/driftless/forge"
	"github.com/driftless/driftless/model"
)

// ForgeConfig is the forge driftless reports commit statuses to and lists
// open pull requests from (issue 13: statuses, polling).
type ForgeConfig struct {
	// API is the forge's API root: https://api.github.com, a Gitea's
	// https://host/api/v1, a GitLab's https://host/api/v4; empty for none.
	API string
	// Token authenticates to it (never logged nor shown).
	Token string
	// Kind is the forge of the repositories no webhook named yet (github,
	// gitea, forgejo, gitlab); a webhook's own kind wins.
	Kind string
}

// ForgeTokenEnv is the variable holding the forge token when
// ForgeConfig.Token is empty (so that it is not on a command line).
const ForgeTokenEnv = "DRIFTLESS_FORGE_TOKEN"

// forgeLink is the controller's reconciler.Forge over package forge: a
// Reporter queue for the statuses, the Client for the pull request lists.
type forgeLink struct {
	client   *forge.Client
	reporter *forge.Reporter
	kind     forge.Kind
}

// newForge makes the controller's forge link, or nil when cfg names no
// API. Run its reporter with run.
func newForge(cfg ForgeConfig, log *slog.Logger) (*forgeLink, error) {
	if cfg.API == "" {
		return nil, nil
	}
	if cfg.Token == "" {
		cfg.Token = os.Getenv(ForgeTokenEnv)
	}
	if cfg.Token == "" {
		return nil, fmt.Errorf("--forge-api %s needs a token (--forge-token or DRIFTLESS_FORGE_TOKEN)", cfg.API)
	}
	kind, err := forge.ParseKind(cfg.Kind)
	if err != nil {
		return nil, fmt.Errorf("--forge: %w", err)
	}
	c := &forge.Client{API: strings.TrimSuffix(cfg.API, "/"), Token: cfg.Token}
	return &forgeLink{client: c, kind: kind, reporter: forge.NewReporter(c, log.With("component", "forge"), forge.ReporterOptions{})}, nil
}

// repo is the forge's name of a repository: the kind and path a webhook
// told, else the configured kind and the path of its URL.
func (f *forgeLink) repo(ref model.RepoRef) forge.Repo {
	r := forge.Repo{Kind: f.kind, Path: ref.Path, ProjectID: ref.ProjectID}
	if k, err := forge.ParseKind(ref.Forge); err == nil && ref.Forge != "" {
		r.Kind = k
	}
	if r.Path == "" {
		r.Path = forge.RepoPath(ref.URL)
	}
	return r
}

// PostStatus is reconciler.Forge's: queued, retried, never blocking.
func (f *forgeLink) PostStatus(ref model.RepoRef, sha string, st model.CommitStatus) {
	f.reporter.Post(f.repo(ref), sha, forge.Status{State: forge.State(st.State), Context: st.Context, TargetURL: st.TargetURL, Description: st.Description})
}

// OpenPullRequests is reconciler.Forge's.
func (f *forgeLink) OpenPullRequests(ctx context.Context, ref model.RepoRef) ([]model.PullRequest, error) {
	return f.client.OpenPullRequests(ctx, f.repo(ref))
}
