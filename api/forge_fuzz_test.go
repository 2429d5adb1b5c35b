package api

import (
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// FuzzParseDelivery feeds webhook deliveries of every forge with any body
// and event name: ParseDelivery never panics, a delivery signed with the
// secret is never refused as unauthenticated, one signed with another
// secret (or carrying the wrong token) always is, the secret never appears
// in an error, and the repository URLs it reads are sorted and distinct.
//
//	go test ./api -run '^$' -fuzz FuzzParseDelivery -fuzztime 60s
func FuzzParseDelivery(f *testing.F) {
	f.Add(uint8(0), "push", []byte(`{"ref":"refs/heads/main","after":"abc","repository":{"clone_url":"https://example.com/a/b.git"}}`))
	f.Add(uint8(1), "pull_request", []byte(`{"action":"opened","number":7,"pull_request":{"number":7,"head":{"ref":"f","sha":"1"}},"repository":{"clone_url":"x","ssh_url":"x"}}`))
	f.Add(uint8(2), "Merge Request Hook", []byte(`{"object_kind":"merge_request","object_attributes":{"iid":3,"action":"open"},"project":{"git_http_url":"h"}}`))
	f.Add(uint8(3), "Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/main","checkout_sha":"s","project":{"git_ssh_url":"s"}}`))
	f.Add(uint8(0), "ping", []byte(`{}`))
	f.Add(uint8(1), "issues", []byte(`not json`))
	f.Add(uint8(2), "push", []byte(`{"repository":null,"pull_request":null}`))
	const secret = "fuzz-webhook-secret-0123456789"
	f.Fuzz(func(t *testing.T, forge uint8, event string, body []byte) {
		for _, signed := range []bool{true, false} {
			key := secret
			if !signed {
				key = secret + "-other"
			}
			h := delivery(forge%4, event, key, body)
			d, err := ParseDelivery(h, body, secret)
			switch {
			case err != nil && strings.Contains(err.Error(), secret):
				t.Fatalf("the secret is in the error %q", err)
			case signed && errors.Is(err, ErrUnauthorized):
				t.Fatalf("a delivery signed with the secret is refused: %v", err)
			case !signed && !errors.Is(err, ErrUnauthorized):
				t.Fatalf("a delivery signed with another secret is accepted: %+v, %v", d, err)
			case err == nil && !slices.IsSorted(d.RepoURLs):
				t.Fatalf("repository URLs not sorted: %q", d.RepoURLs)
			case err == nil && len(slices.Compact(slices.Clone(d.RepoURLs))) != len(d.RepoURLs):
				t.Fatalf("repository URLs repeated: %q", d.RepoURLs)
			}
		}
	})
}

// delivery is the headers forge (0 GitHub, 1 Gitea, 2 Forgejo, 3 GitLab)
// sends with event and body, signed with key.
func delivery(forge uint8, event, key string, body []byte) http.Header {
	h := http.Header{}
	mac := hex.EncodeToString(bodyMAC(key, body))
	switch forge {
	case 0:
		h.Set("X-GitHub-Event", event)
		h.Set("X-Hub-Signature-256", "sha256="+mac)
	case 1:
		h.Set("X-Gitea-Event", event)
		h.Set("X-Gitea-Signature", mac)
	case 2:
		h.Set("X-Forgejo-Event", event)
		h.Set("X-Forgejo-Signature", mac)
	default:
		h.Set("X-Gitlab-Event", event)
		h.Set("X-Gitlab-Token", key)
	}
	return h
}
