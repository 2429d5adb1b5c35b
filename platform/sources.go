package platform

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/driftless/driftless/reconciler"
	"github.com/driftless/driftless/reconciler/source"
)

// sources turns the git configuration into the controller's app sources,
// named after their folders, and its policy source (nil for the built-in
// bundle). Paths are made absolute; clones go under dataDir/sources.
func sources(g GitConfig, dataDir string) ([]reconciler.SourceConfig, *source.Config, error) {
	var out []reconciler.SourceConfig
	used := map[string]int{}
	for _, repo := range g.Repos {
		space := g.Space
		if sp, rest, ok := strings.Cut(repo, "="); ok && spaceName.MatchString(sp) && rest != "" {
			space, repo = sp, rest // SPACE=PATH_OR_URL
		}
		name := sourceName(repo)
		used[name]++
		if used[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, used[name])
		}
		url, err := sourceURL(repo)
		if err != nil {
			return nil, nil, fmt.Errorf("repo %s: %w", repo, err)
		}
		out = append(out, reconciler.SourceConfig{Space: space, Org: g.Org, Config: source.Config{
			Name: name, URL: url, Dir: filepath.Join(dataDir, "sources", name), Poll: g.Poll}})
	}
	if g.Policies == "" {
		return out, nil, nil
	}
	url, err := sourceURL(g.Policies)
	if err != nil {
		return nil, nil, fmt.Errorf("policies %s: %w", g.Policies, err)
	}
	return out, &source.Config{Name: "policies", URL: url, Dir: filepath.Join(dataDir, "sources", "_policies"), Poll: g.Poll}, nil
}

// sourceURL is a URL as it is, a path made absolute.
func sourceURL(repo string) (string, error) {
	if strings.Contains(repo, "://") {
		return repo, nil
	}
	abs, err := filepath.Abs(repo)
	if err != nil {
		return "", fmt.Errorf("making the path absolute: %w", err)
	}
	return abs, nil
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// spaceName is what a space may be called (the SPACE= prefix of a repo).
var spaceName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// sourceName derives a source name from a path or URL: its last element
// without ".git".
func sourceName(repo string) string {
	base := filepath.Base(strings.TrimRight(repo, "/"))
	base = strings.TrimSuffix(base, ".git")
	base = strings.Trim(unsafeName.ReplaceAllString(base, "-"), "-")
	if base == "" {
		return "source"
	}
	return base
}
