package model

import "testing"

func TestNormalizeRepoURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://github.com/octo/apps", "https://github.com/octo/apps"},
		{"https://github.com/octo/apps.git", "https://github.com/octo/apps"},
		{"https://github.com/octo/apps/", "https://github.com/octo/apps"},
		{"https://github.com/octo/apps.git/", "https://github.com/octo/apps"},
		{"HTTPS://GitHub.COM/octo/apps.git", "https://github.com/octo/apps"},
		{"https://github.com/Octo/Apps", "https://github.com/Octo/Apps"}, // path case kept
		{"https://github.com:443/octo/apps", "https://github.com/octo/apps"},
		{"http://localhost:3000/gitea/webhooks.git", "http://localhost:3000/gitea/webhooks"},
		{"http://example.com:80/g/p", "http://example.com/g/p"},
		{"https://user:xxxxx@git.example.com/o/r.git", "https://git.example.com/o/r"},
		{"https://TOKEN@git.example.com/o/r", "https://git.example.com/o/r"},
		{"https://github.com/octo/apps?x=1#frag", "https://github.com/octo/apps"},
		{"https://[::1]:8443/o/r.git", "https://[::1]:8443/o/r"},
		{"git@github.com:octo/apps.git", "ssh://github.com/octo/apps"},
		{"ssh://git@GitHub.com/octo/apps.git", "ssh://github.com/octo/apps"},
		{"ssh://gitea@localhost:2222/gitea/webhooks.git", "ssh://localhost:2222/gitea/webhooks"},
		{"file:///srv/repos/apps", "file:///srv/repos/apps"},
		{"FILE:///srv/repos/apps.git/", "file:///srv/repos/apps"},
		{"file://localhost/srv/repos/apps", "file:///srv/repos/apps"},
		{"file:///srv/Repos/Apps", "file:///srv/Repos/Apps"},
		{"/srv/repos/apps", "file:///srv/repos/apps"},
		{"/srv/repos/apps/.git", "file:///srv/repos/apps"},
		{"  https://github.com/octo/apps \n", "https://github.com/octo/apps"},
		{"", ""},
		{"relative/apps.git", "relative/apps"},
	}
	for _, tt := range tests {
		if got := NormalizeRepoURL(tt.in); got != tt.want {
			t.Errorf("NormalizeRepoURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
