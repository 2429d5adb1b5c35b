package forge

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/driftless/driftless/model"
)

// Page sizes asked for, and the most pages OpenPullRequests reads (so a
// call is bounded whatever the forge answers).
const (
	pageSize      = 100 // GitHub's and GitLab's maximum per_page
	giteaPageSize = 50  // Gitea's default MAX_RESPONSE_ITEMS
	maxPages      = 50
)

// OpenPullRequests lists the open pull requests (GitLab: merge requests)
// of repo, every page of them, each as an opened one (Action PROpened):
//
//   - GitHub: GET {API}/repos/{owner}/{repo}/pulls?state=open&per_page=100,
//     following the Link header's rel="next";
//   - Gitea: the same path with state=open&limit=50&page=N, following its
//     Link header, else the next page while a page comes back full;
//   - GitLab: GET {API}/projects/{id}/merge_requests?state=opened&per_page=100,
//     following X-Next-Page.
//
// A next link to another host than API's is refused. It reads at most 50
// pages.
func (c *Client) OpenPullRequests(ctx context.Context, repo Repo) ([]model.PullRequest, error) {
	op := "listing the open pull requests of " + repo.String()
	base, err := c.base()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var first string
	switch repo.Kind {
	case GitHub, Gitea:
		or, err := repo.ownerRepo()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		first = base.String() + "/repos/" + or + "/pulls?state=open&per_page=" + strconv.Itoa(pageSize)
		if repo.Kind == Gitea {
			first = base.String() + "/repos/" + or + "/pulls?state=open&limit=" + strconv.Itoa(giteaPageSize) + "&page=1"
		}
	case GitLab:
		id, err := repo.projectID()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		first = base.String() + "/projects/" + id + "/merge_requests?state=opened&per_page=" + strconv.Itoa(pageSize)
	default:
		return nil, fmt.Errorf("%s: %w: unknown forge kind %q", op, ErrInvalid, repo.Kind)
	}
	var out []model.PullRequest
	seen := map[int]bool{}
	next := first
	for page := 1; next != ""; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("%s: more than %d pages", op, maxPages)
		}
		pop := fmt.Sprintf("%s (page %d)", op, page)
		data, h, err := c.do(ctx, repo.Kind, pop, http.MethodGet, base, next, nil)
		if err != nil {
			return nil, err
		}
		var prs []model.PullRequest
		if repo.Kind == GitLab {
			prs, err = decodeGitLab(data)
		} else {
			prs, err = decodeGitHub(data)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: decoding the answer: %w", pop, err)
		}
		for _, pr := range prs {
			if !seen[pr.Number] { // a PR opened while paging can shift one onto two pages
				seen[pr.Number] = true
				out = append(out, pr)
			}
		}
		next, err = c.nextPage(repo.Kind, base, next, h, len(prs))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pop, err)
		}
	}
	return out, nil
}

// nextPage returns the URL of the page after current ("" when it was the
// last), from the headers of current's answer and its count of items.
func (c *Client) nextPage(kind Kind, base *url.URL, current string, h http.Header, n int) (string, error) {
	var next string
	switch kind {
	case GitLab:
		p := strings.TrimSpace(h.Get("X-Next-Page"))
		if p == "" {
			return "", nil
		}
		if _, err := strconv.Atoi(p); err != nil {
			return "", fmt.Errorf("X-Next-Page %q is not a page number", p)
		}
		next = withQuery(current, "page", p)
	default:
		next = linkNext(h.Values("Link"))
		if next == "" && kind == Gitea && n >= giteaPageSize {
			cur, _ := url.Parse(current)
			page, err := strconv.Atoi(cur.Query().Get("page"))
			if err != nil {
				page = 1
			}
			next = withQuery(current, "page", strconv.Itoa(page+1))
		}
		if next == "" {
			return "", nil
		}
	}
	u, err := url.Parse(next)
	if err != nil {
		return "", fmt.Errorf("next page link %q: %w", c.redact(next), err)
	}
	u = base.ResolveReference(u)
	if !sameOrigin(base, u) {
		return "", fmt.Errorf("refusing a next page on another host than the forge API's: %s", u.Host)
	}
	if s := u.String(); s != current {
		return s, nil
	}
	return "", fmt.Errorf("the next page link points at the same page")
}

// withQuery returns raw with query parameter k set to v.
func withQuery(raw, k, v string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	q := u.Query()
	q.Set(k, v)
	u.RawQuery = q.Encode()
	return u.String()
}

// linkNext returns the rel="next" URL of RFC 8288 Link header values.
func linkNext(values []string) string {
	for _, v := range values {
		for _, link := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(link), ";")
			if !ok {
				continue
			}
			target = strings.TrimSpace(target)
			if !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(strings.TrimSpace(k), "rel") {
					for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
						if strings.EqualFold(rel, "next") {
							return target[1 : len(target)-1]
						}
					}
				}
			}
		}
	}
	return ""
}

// ghPull is the part of a pull request in GitHub's and Gitea's "list pull
// requests" read here.
type ghPull struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
	User   *struct {
		Login string `json:"login"`
	} `json:"user"`
	Labels []struct {
		Name string `json:"name"`
	} `json:"labels"`
	Head struct {
		SHA  string `json:"sha"`
		Ref  string `json:"ref"`
		Repo *struct {
			CloneURL string `json:"clone_url"`
			SSHURL   string `json:"ssh_url"`
			HTMLURL  string `json:"html_url"`
		} `json:"repo"`
	} `json:"head"`
	Base struct {
		Ref string `json:"ref"`
	} `json:"base"`
}

func decodeGitHub(data []byte) ([]model.PullRequest, error) {
	var pulls []ghPull
	if err := json.Unmarshal(data, &pulls); err != nil {
		return nil, err
	}
	out := make([]model.PullRequest, 0, len(pulls))
	for _, p := range pulls {
		if p.Number <= 0 {
			return nil, fmt.Errorf("a pull request without a number")
		}
		pr := model.PullRequest{Number: p.Number, Action: model.PROpened, Title: p.Title,
			HeadSHA: p.Head.SHA, HeadRef: p.Head.Ref, BaseRef: p.Base.Ref, Ref: model.GitHubPullRef(p.Number)}
		if p.User != nil {
			pr.Author = p.User.Login
		}
		for _, l := range p.Labels {
			pr.Labels = append(pr.Labels, l.Name)
		}
		if r := p.Head.Repo; r != nil { // nil when the fork was deleted
			for _, u := range []string{r.CloneURL, r.SSHURL, r.HTMLURL} {
				if u != "" {
					pr.HeadRepoURLs = append(pr.HeadRepoURLs, u)
				}
			}
		}
		out = append(out, pr)
	}
	return out, nil
}

// glMergeRequest is the part of a merge request in GitLab's "list project
// merge requests" read here (labels are names unless
// with_labels_details is asked for).
type glMergeRequest struct {
	IID          int      `json:"iid"`
	Title        string   `json:"title"`
	SHA          string   `json:"sha"`
	SourceBranch string   `json:"source_branch"`
	TargetBranch string   `json:"target_branch"`
	Labels       []string `json:"labels"`
	Author       *struct {
		Username string `json:"username"`
	} `json:"author"`
}

func decodeGitLab(data []byte) ([]model.PullRequest, error) {
	var mrs []glMergeRequest
	if err := json.Unmarshal(data, &mrs); err != nil {
		return nil, err
	}
	out := make([]model.PullRequest, 0, len(mrs))
	for _, m := range mrs {
		if m.IID <= 0 {
			return nil, fmt.Errorf("a merge request without an iid")
		}
		pr := model.PullRequest{Number: m.IID, Action: model.PROpened, Title: m.Title, HeadSHA: m.SHA,
			HeadRef: m.SourceBranch, BaseRef: m.TargetBranch, Labels: m.Labels, Ref: model.GitLabMergeRequestRef(m.IID)}
		if m.Author != nil {
			pr.Author = m.Author.Username
		}
		out = append(out, pr)
	}
	return out, nil
}
