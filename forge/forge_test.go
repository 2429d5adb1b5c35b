package forge

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseKind(t *testing.T) {
	tests := []struct {
		in   string
		want Kind
		err  bool
	}{
		{"github", GitHub, false},
		{"GitHub", GitHub, false},
		{"gitea", Gitea, false},
		{"forgejo", Gitea, false},
		{" Forgejo ", Gitea, false},
		{"gitlab", GitLab, false},
		{"", "", true},
		{"bitbucket", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseKind(tt.in)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("ParseKind(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				for _, k := range []string{"github", "gitea", "forgejo", "gitlab"} {
					if !strings.Contains(err.Error(), k) {
						t.Errorf("error %q does not list %s", err, k)
					}
				}
			}
		})
	}
}

func TestRepoPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/octo/app", "octo/app"},
		{"https://github.com/octo/app.git", "octo/app"},
		{"https://github.com/octo/app.git/", "octo/app"},
		{"https://user:secret@GitHub.com/octo/app.git", "octo/app"},
		{"http://gitea.example:3000/octo/app.git", "octo/app"},
		{"ssh://git@github.com/octo/app.git", "octo/app"},
		{"ssh://git@gitea.example:2222/octo/app.git", "octo/app"},
		{"git@github.com:octo/app.git", "octo/app"},
		{"git@gitlab.example:group/sub/app.git", "group/sub/app"},
		{"https://gitlab.example/group/sub/app.git", "group/sub/app"},
		{"file:///tmp/test123/octo/app.git", "octo/app"},
		{"file:///var/lib/repos/a/b/octo/app", "octo/app"},
		{"/tmp/test123/octo/app.git", "octo/app"},
		{"file:///app.git", ""},
		{"https://github.com", ""},
		{"https://github.com/", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := RepoPath(tt.in); got != tt.want {
				t.Errorf("RepoPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", 200)
	tests := []struct {
		name, in, want string
	}{
		{"short", "deployed", "deployed"},
		{"exactly the limit", strings.Repeat("a", 140), strings.Repeat("a", 140)},
		{"one over", strings.Repeat("a", 141), strings.Repeat("a", 139) + "…"},
		{"multibyte cut on a rune boundary", long, strings.Repeat("é", 139) + "…"},
		{"invalid UTF-8 replaced", "a\xffb", "a\uFFFDb"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := truncate(tt.in, MaxDescription)
			if got != tt.want {
				t.Errorf("truncate = %q, want %q", got, tt.want)
			}
			if !utf8.ValidString(got) || utf8.RuneCountInString(got) > MaxDescription {
				t.Errorf("truncate gave %d runes, valid %v", utf8.RuneCountInString(got), utf8.ValidString(got))
			}
		})
	}
}
