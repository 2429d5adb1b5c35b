package source

import (
	"context"
	"errors"
	"fmt"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
)

// refsPrefix is where a URL source's clone keeps the refs fetched by
// FetchRef: "refs/pull/1/head" is kept as "refs/driftless/pull/1/head".
const refsPrefix = "refs/driftless/"

// FetchRef fetches one ref of the source's repository other than its
// branch — a pull request's head, "refs/pull/<N>/head" or
// "refs/merge-requests/<IID>/head" — and returns the commit it points at.
// A URL source fetches it into its clone (force-updated, so a force-push
// to the pull request is followed); a plain-path source reads it in
// place. It is serialized with the source's other fetches and does not
// change what Run, LastError or Branch report. The snapshot's Branch is
// the ref.
func (s *Source) FetchRef(ctx context.Context, ref string) (*Snapshot, error) {
	name := plumbing.ReferenceName(ref)
	if !strings.HasPrefix(ref, "refs/") || name.Validate() != nil {
		return nil, fmt.Errorf("source %q: fetch ref %q: not a valid ref name", s.cfg.Name, ref)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("source %q: fetch ref %s of %s: wait for the previous fetch: %w", s.cfg.Name, ref, s.redacted, ctx.Err())
	}
	defer func() { <-s.sem }()

	var snap *Snapshot
	var err error
	if s.remote {
		snap, err = s.fetchRemoteRef(ctx, name)
	} else {
		snap, err = s.readLocalRef(name)
	}
	if err != nil {
		return nil, fmt.Errorf("source %q: fetch ref %s of %s: %w", s.cfg.Name, ref, s.redacted, err)
	}
	return snap, nil
}

// ForgetRef deletes what FetchRef kept of ref in a URL source's clone (a
// closed pull request's head), so that its objects can be pruned; a
// plain-path source keeps nothing and is not touched.
func (s *Source) ForgetRef(ctx context.Context, ref string) error {
	if !s.remote {
		return nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("source %q: forget ref %s: %w", s.cfg.Name, ref, ctx.Err())
	}
	defer func() { <-s.sem }()
	r, err := git.PlainOpen(s.cfg.Dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("source %q: forget ref %s: open clone %s: %w", s.cfg.Name, ref, s.cfg.Dir, err)
	}
	if err := r.Storer.RemoveReference(localRef(plumbing.ReferenceName(ref))); err != nil {
		return fmt.Errorf("source %q: forget ref %s: %w", s.cfg.Name, ref, err)
	}
	return nil
}

// localRef is where a URL source's clone keeps ref.
func localRef(ref plumbing.ReferenceName) plumbing.ReferenceName {
	return plumbing.ReferenceName(refsPrefix + strings.TrimPrefix(ref.String(), "refs/"))
}

// readLocalRef reads ref of a plain-path repository in place.
func (s *Source) readLocalRef(name plumbing.ReferenceName) (*Snapshot, error) {
	r, err := git.PlainOpenWithOptions(s.path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", s.path, err)
	}
	ref, err := r.Reference(name, true)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, fmt.Errorf("ref %s does not exist", name)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", name, err)
	}
	return newSnapshot(r, ref.Hash(), name.String(), s.cache, s.log)
}

// fetchRemoteRef fetches ref from the remote into the clone, force-updating
// its local copy, and returns its head.
func (s *Source) fetchRemoteRef(ctx context.Context, name plumbing.ReferenceName) (*Snapshot, error) {
	r, err := s.openClone()
	if err != nil {
		return nil, err
	}
	local := localRef(name)
	rem := git.NewRemote(r.Storer, &config.RemoteConfig{Name: remoteName, URLs: []string{s.endpoint}})
	spec := config.RefSpec("+" + name.String() + ":" + local.String())
	err = rem.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{spec},
		Auth:       s.authMethod(),
		Tags:       git.NoTags,
		Force:      true,
	})
	var noMatch git.NoMatchingRefSpecError
	switch {
	case errors.As(err, &noMatch):
		return nil, fmt.Errorf("ref %s does not exist on the remote", name)
	case err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate):
		return nil, fmt.Errorf("fetch: %w", err)
	}
	ref, err := r.Reference(local, true)
	if err != nil {
		return nil, fmt.Errorf("resolve fetched %s in %s: %w", name, s.cfg.Dir, err)
	}
	s.log.Debug("fetched ref", "ref", name, "commit", ref.Hash())
	return newSnapshot(r, ref.Hash(), name.String(), s.cache, s.log)
}
