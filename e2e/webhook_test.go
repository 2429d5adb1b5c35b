package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/driftless/driftless/api"
	"github.com/driftless/driftless/internal/testenv"
	"github.com/driftless/driftless/model"
)

// A signed GitHub push naming the platform's repository (by its file://
// URL) fetches and applies the new commit at once, though the platform
// polls only every 10 minutes; a push naming another repository, a
// delivery sent again and one signed with another secret fetch nothing.
func TestWebhookPush(t *testing.T) {
	const secret = "e2e-webhook-secret"
	p := startDev(t, "--webhook-secret", secret, "--poll", "10m")
	repoURLs := []string{"file://" + p.repo, "file://" + p.repo + "/"}
	// The first fetch, at start, finds the repository without a commit;
	// the next one would be 10 minutes later.
	testenv.Eventually(t, 30*time.Second, 100*time.Millisecond, "the first fetch is done", func() error {
		s, err := p.source(t)
		if err != nil {
			return err
		}
		if s.FetchError == "" && s.LastFetch.IsZero() {
			return fmt.Errorf("source %+v", s)
		}
		return nil
	})

	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(1, "Hooked")})
	p.addHello("apps/hello")
	first := p.commitAll("hello, by webhook")

	// Another repository: nothing is fetched.
	code, res := p.postPush(t, secret, "other-1", []string{"https://github.com/someone/else.git", "git@github.com:someone/else.git"}, first)
	if code != http.StatusAccepted || !strings.Contains(res.Status, "no source matches") || len(res.Sources) != 0 {
		t.Fatalf("push of another repository: %d %+v", code, res)
	}
	// Signed with another secret: refused, nothing fetched.
	if code, res := p.postPush(t, "not-"+secret, "forged-1", repoURLs, first); code != http.StatusUnauthorized {
		t.Fatalf("push signed with another secret: %d %+v", code, res)
	}
	p.stillNotSeen(t, first, 3*time.Second)

	// This repository: fetched and applied well before the poll.
	sent := time.Now()
	code, res = p.postPush(t, secret, "push-1", repoURLs, first)
	if code != http.StatusAccepted || len(res.Sources) != 1 || res.Sources[0] != "repo" {
		t.Fatalf("push of the platform's repository: %d %+v", code, res)
	}
	p.waitApplied(t, first, 20*time.Second)
	t.Logf("commit applied %s after the webhook", time.Since(sent).Round(time.Millisecond))
	p.waitServing(t, 90*time.Second, 1, greetingIs("Hooked"))

	// The same delivery again (a forge's redelivery): not acted on.
	p.write(map[string]string{"apps/hello/manifest.yml": helloManifest(1, "Hooked twice")})
	second := p.commitAll("hello, again")
	code, res = p.postPush(t, secret, "push-1", repoURLs, second)
	if code != http.StatusAccepted || !strings.Contains(res.Status, "received before") || len(res.Sources) != 0 {
		t.Fatalf("a delivery sent again: %d %+v", code, res)
	}
	p.stillNotSeen(t, second, 3*time.Second)

	// A new delivery: applied.
	if code, res = p.postPush(t, secret, "push-2", repoURLs, second); code != http.StatusAccepted || len(res.Sources) != 1 {
		t.Fatalf("second push: %d %+v", code, res)
	}
	p.waitApplied(t, second, 20*time.Second)
}

// postPush posts a GitHub push event of the repository known by urls,
// signed with secret, as delivery id.
func (p *platform) postPush(t testing.TB, secret, id string, urls []string, after string) (int, api.WebhookResult) {
	t.Helper()
	repo := map[string]string{"clone_url": urls[0], "html_url": urls[len(urls)-1]}
	return p.postGitHub(t, secret, id, "push", map[string]any{"ref": "refs/heads/main", "before": strings.Repeat("0", 40),
		"after": after, "repository": repo, "pusher": map[string]string{"name": "e2e"}, "commits": []any{}})
}

// postGitHub posts a GitHub delivery of event with payload, signed with
// secret as GitHub signs (X-Hub-Signature-256: "sha256=" and the hex
// HMAC-SHA256 of the body), as delivery id.
func (p *platform) postGitHub(t testing.TB, secret, id, event string, payload any) (int, api.WebhookResult) {
	t.Helper()
	body := marshal(t, payload)
	h := http.Header{}
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", id)
	h.Set("X-Hub-Signature-256", "sha256="+hmacHex(secret, body))
	h.Set("User-Agent", "GitHub-Hookshot/e2e")
	return p.post(t, secret, h, body)
}

// post posts a webhook delivery of body with header (and Content-Type
// application/json) to the platform's API; it retries while the controller
// is not leading yet (503), and fails the test if the answer shows secret.
func (p *platform) post(t testing.TB, secret string, header http.Header, body []byte) (int, api.WebhookResult) {
	t.Helper()
	var code int
	var res api.WebhookResult
	testenv.Eventually(t, 30*time.Second, 200*time.Millisecond, "the webhook answers", func() error {
		req, err := http.NewRequest("POST", p.apiURL()+"/v1/webhook", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header = header.Clone()
		req.Header.Set("Content-Type", "application/json")
		hc, err := p.httpsClient()
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusServiceUnavailable {
			return fmt.Errorf("503: %s", data)
		}
		if strings.Contains(string(data), secret) {
			t.Fatalf("the answer shows the secret: %s", data)
		}
		code, res = resp.StatusCode, api.WebhookResult{}
		return json.Unmarshal(data, &res)
	})
	return code, res
}

// marshal is payload as JSON.
func marshal(t testing.TB, payload any) []byte {
	t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// hmacHex is the hex HMAC-SHA256 of body keyed with secret, the signature
// GitHub (after "sha256="), Gitea and Forgejo send.
func hmacHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// source is the platform's one source as its status shows it.
func (p *platform) source(t testing.TB) (model.SourceStatus, error) {
	t.Helper()
	st, err := p.client.Status(context.Background())
	if err != nil {
		return model.SourceStatus{}, err
	}
	if len(st.Sources) != 1 {
		return model.SourceStatus{}, fmt.Errorf("%d sources", len(st.Sources))
	}
	return st.Sources[0], nil
}

// waitApplied waits until commit is the source's last applied one.
func (p *platform) waitApplied(t testing.TB, commit string, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, 100*time.Millisecond, "commit "+model.ShortCommit(commit)+" applied", func() error {
		s, err := p.source(t)
		if err != nil {
			return err
		}
		if s.LastApplied != commit {
			return fmt.Errorf("last applied %q, seen %q, fetch error %q", s.LastApplied, s.LastSeen, s.FetchError)
		}
		return nil
	})
}

// stillNotSeen checks for d that the source never sees commit.
func (p *platform) stillNotSeen(t testing.TB, commit string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		s, err := p.source(t)
		if err != nil {
			t.Fatal(err)
		}
		if s.LastSeen == commit {
			t.Fatalf("commit %s was fetched without a webhook naming the repository", model.ShortCommit(commit))
		}
	}
}
