package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// remoteName names the remote whose refs the bare clone keeps
// (refs/remotes/origin/<branch>); the remote itself is not written to the
// clone's config, so credentials never reach the disk.
const remoteName = "origin"

// readLocal reads the branch head of a plain-path repository in place. The
// repository is opened afresh on every fetch so that HEAD, refs and packs
// written by git in the meantime are seen, and the returned snapshot owns
// its own handle.
func (s *Source) readLocal() (*Snapshot, error) {
	r, err := git.PlainOpenWithOptions(s.path, &git.PlainOpenOptions{EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", s.path, err)
	}
	branch := s.cfg.Branch
	var ref *plumbing.Reference
	if branch == "" {
		head, err := r.Reference(plumbing.HEAD, false)
		if err != nil {
			return nil, fmt.Errorf("read HEAD: %w", err)
		}
		if head.Type() == plumbing.SymbolicReference {
			if !head.Target().IsBranch() {
				return nil, fmt.Errorf("HEAD points to %s, not a branch", head.Target())
			}
			branch = head.Target().Short()
		} else {
			ref = head // detached HEAD: follow it as is
		}
	}
	if ref == nil {
		ref, err = r.Reference(plumbing.NewBranchReferenceName(branch), true)
		if errors.Is(err, plumbing.ErrReferenceNotFound) {
			return nil, fmt.Errorf("branch %q does not exist or has no commits", branch)
		}
		if err != nil {
			return nil, fmt.Errorf("resolve branch %q: %w", branch, err)
		}
	}
	return newSnapshot(r, ref.Hash(), branch, s.cache, s.log)
}

// fetchRemote brings the bare clone's ref for the branch up to date with the
// remote and returns its head. It lists the remote's refs first, so an
// unchanged branch costs one round trip and no pack.
func (s *Source) fetchRemote(ctx context.Context) (*Snapshot, error) {
	r, err := s.openClone()
	if err != nil {
		return nil, err
	}
	rem := git.NewRemote(r.Storer, &config.RemoteConfig{Name: remoteName, URLs: []string{s.endpoint}})
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: s.authMethod()})
	if err != nil {
		return nil, fmt.Errorf("list remote refs: %w", err)
	}
	branch, want, err := s.pickBranch(refs)
	if err != nil {
		return nil, err
	}
	local := plumbing.NewRemoteReferenceName(remoteName, branch)
	if cur, err := r.Reference(local, true); err != nil || cur.Hash() != want || !hasObject(r, want) {
		spec := config.RefSpec("+" + plumbing.NewBranchReferenceName(branch).String() + ":" + local.String())
		err := rem.FetchContext(ctx, &git.FetchOptions{
			RemoteName: remoteName,
			RefSpecs:   []config.RefSpec{spec},
			Auth:       s.authMethod(),
			Tags:       git.NoTags,
			Force:      true,
		})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return nil, fmt.Errorf("fetch branch %q: %w", branch, err)
		}
		s.log.Debug("fetched", "branch", branch, "dir", s.cfg.Dir)
	}
	ref, err := r.Reference(local, true)
	if err != nil {
		return nil, fmt.Errorf("resolve fetched branch %q in %s: %w", branch, s.cfg.Dir, err)
	}
	return newSnapshot(r, ref.Hash(), branch, s.cache, s.log)
}

func (s *Source) authMethod() transport.AuthMethod {
	if s.auth == nil {
		return nil // a nil *BasicAuth in the interface would be used
	}
	return s.auth
}

// pickBranch finds the configured branch, or the remote's HEAD branch, in
// the advertised refs.
func (s *Source) pickBranch(refs []*plumbing.Reference) (string, plumbing.Hash, error) {
	byName := make(map[plumbing.ReferenceName]*plumbing.Reference, len(refs))
	for _, ref := range refs {
		byName[ref.Name()] = ref
	}
	branch := s.cfg.Branch
	if branch == "" {
		head := byName[plumbing.HEAD]
		switch {
		case head == nil:
			return "", plumbing.ZeroHash, errors.New("remote advertises no HEAD (empty repository?)")
		case head.Type() == plumbing.SymbolicReference:
			if !head.Target().IsBranch() {
				return "", plumbing.ZeroHash, fmt.Errorf("remote HEAD points to %s, not a branch", head.Target())
			}
			branch = head.Target().Short()
		default: // no symref capability: a branch at HEAD's commit
			var names []string
			for _, ref := range refs {
				if ref.Name().IsBranch() && ref.Hash() == head.Hash() {
					names = append(names, ref.Name().Short())
				}
			}
			if len(names) == 0 {
				return "", plumbing.ZeroHash, errors.New("remote HEAD is not on any branch")
			}
			sort.Strings(names)
			branch = names[0]
		}
	}
	ref := byName[plumbing.NewBranchReferenceName(branch)]
	if ref == nil || ref.Type() != plumbing.HashReference {
		return "", plumbing.ZeroHash, fmt.Errorf("branch %q not found on the remote", branch)
	}
	return branch, ref.Hash(), nil
}

func hasObject(r *git.Repository, h plumbing.Hash) bool {
	return r.Storer.HasEncodedObject(h) == nil
}

// openClone opens the bare clone in Dir, creating it if Dir is missing or
// empty. A new clone is initialized in a temporary sibling folder and renamed
// into place, so an interrupted first fetch never leaves a half-made Dir.
func (s *Source) openClone() (*git.Repository, error) {
	dir := s.cfg.Dir
	r, err := git.PlainOpen(dir)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("open clone %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case err == nil && len(entries) > 0:
		return nil, fmt.Errorf("clone dir %s is not empty and not a git repository: remove it or choose another Dir", dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("read clone dir %s: %w", dir, err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("create parent of clone dir %s: %w", dir, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".init-")
	if err != nil {
		return nil, fmt.Errorf("create clone dir for %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	if _, err := git.PlainInit(tmp, true); err != nil {
		return nil, fmt.Errorf("init bare clone in %s: %w", tmp, err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("replace empty clone dir %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("move new clone into %s: %w", dir, err)
	}
	s.log.Info("created bare clone", "dir", dir)
	r, err = git.PlainOpen(dir)
	if err != nil {
		return nil, fmt.Errorf("open new clone %s: %w", dir, err)
	}
	return r, nil
}

// validName reports whether a tree entry name is a single, safe path
// element. git itself refuses the others, but a crafted tree may hold them;
// they are skipped so that no path escapes the tree or the tar.
func validName(name string) bool {
	switch {
	case name == "", name == ".", name == "..", strings.EqualFold(name, ".git"):
		return false
	case strings.ContainsAny(name, "/\x00"):
		return false
	}
	return true
}
