package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser is a headless Debian chromium driven over the DevTools protocol,
// with everything its page writes to the console.
type browser struct {
	t   testing.TB
	ctx context.Context

	mu   sync.Mutex
	msgs []chromedp.ConsoleMessage
}

// newBrowser starts headless chromium with a profile of its own. It trusts
// any certificate (dev's API has its own CA) and sends whatever is not on
// loopback to a closed port of loopback (no traffic leaves the host).
func newBrowser(t testing.TB) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium (Debian's package) drives the dashboard's tests and is not installed: run make setup (%v)", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.NoSandbox, // tests run as root
		chromedp.IgnoreCertErrors,
		chromedp.Flag("proxy-server", "http://127.0.0.1:9"), // loopback itself is never proxied
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	b := &browser{t: t, ctx: ctx}
	msgs := chromedp.Console(ctx)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs actions with a timeout of their own.
func (b *browser) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// eval evaluates a JavaScript expression whose value is a string.
func (b *browser) eval(expr string) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[string](expr))
}

// navigate loads url in the tab. Chromium abandons a load when the host's
// network changes (other tests add and remove bridges and namespaces on
// the same host): such a load is tried again.
func (b *browser) navigate(url string) {
	b.t.Helper()
	var err error
	for range 5 {
		if err = b.do(30*time.Second, chromedp.Navigate(url)); err == nil || !networkChanged(err.Error()) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("loading %s: %v", url, err)
	}
}

// networkChanged reports whether chromium's error says the host's network
// changed under a request (not a failure of the page or of the API).
func networkChanged(msg string) bool { return strings.Contains(msg, "ERR_NETWORK_CHANGED") }

// wait evaluates expr (a string) every 100 ms until it is not empty, and
// returns it; past timeout it fails the test with what.
func (b *browser) wait(timeout time.Duration, what, expr string) string {
	b.t.Helper()
	v, err := b.poll(timeout, expr)
	if err != nil {
		main, _ := b.eval(`(document.getElementById("main") || document.body).innerText.slice(0, 3000)`)
		b.t.Fatalf("%s: %v; the page shows:\n%s\nconsole: %q", what, err, main, b.problems(false))
	}
	return v
}

// poll evaluates expr (a string) every 100 ms until it is not empty, and
// returns it, or an error past timeout.
func (b *browser) poll(timeout time.Duration, expr string) (string, error) {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		v, err := b.eval(expr)
		if err == nil && v != "" {
			return v, nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("not within %s (last error: %v)", timeout, last)
}

// text is the text of the element that selector finds ("" for none).
func (b *browser) text(selector string) string {
	v, _ := b.eval(fmt.Sprintf(`(document.querySelector(%q) || {innerText: ""}).innerText`, selector))
	return v
}

// problems lists the page's console errors and uncaught exceptions (but
// requests abandoned because the host's network changed); with
// refusals, the browser's reports of API answers 401, 403 and 404 are
// left out (a page that shows the API's refusal had one).
func (b *browser) problems(refusals bool) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs {
		if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException {
			continue
		}
		if m.Source == "network" && networkChanged(m.Text) {
			continue // the host's network changed under a request; the page retries
		}
		if refusals && m.Source == "network" && strings.Contains(m.URL, "/v1/") &&
			(strings.Contains(m.Text, "401") || strings.Contains(m.Text, "403") || strings.Contains(m.Text, "404")) {
			continue
		}
		out = append(out, fmt.Sprintf("%s %s (%s:%d) %s", m.Type, m.Source, m.URL, m.Line+1, m.Text))
	}
	return out
}

// signIn opens the dashboard at api (the API's URL, as a user types it)
// and signs in with tok through the form.
func (b *browser) signIn(api, tok string) {
	b.t.Helper()
	form := `document.querySelector("#signin #token") ? "y" : ""`
	b.navigate(api + "/")
	// A module whose load chromium abandoned (the host's network changed)
	// leaves the page unstarted: it is loaded again.
	for range 2 {
		if _, err := b.poll(15*time.Second, form); err == nil {
			break
		}
		b.t.Logf("the dashboard did not start (console: %q): loading it again", b.problems(false))
		b.navigate(api + "/")
	}
	b.wait(15*time.Second, "the sign-in form", form)
	if err := b.do(20*time.Second,
		chromedp.SendKeys(chromedp.CSS("#token"), tok),
		chromedp.Click(chromedp.CSS(`#signin button[type="submit"]`)),
	); err != nil {
		b.t.Fatalf("signing in: %v", err)
	}
}

// signOut forgets the token.
func (b *browser) signOut() {
	b.t.Helper()
	if err := b.do(10*time.Second, chromedp.Click(chromedp.CSS("#signout"))); err != nil {
		b.t.Fatalf("signing out: %v", err)
	}
	b.wait(10*time.Second, "the sign-in form after signing out", `document.querySelector("#signin") ? "y" : ""`)
}

// show goes to a page of the dashboard (a hash route) and waits for its
// first answer.
func (b *browser) show(route, page string) {
	b.t.Helper()
	if _, err := b.eval(fmt.Sprintf(`location.hash = %q; ""`, route)); err != nil {
		b.t.Fatalf("going to %s: %v", route, err)
	}
	b.wait(30*time.Second, "page "+route+" loaded", fmt.Sprintf(`document.querySelector("#page-%s[data-loaded]") ? "y" : ""`, page))
	if text := b.text("#main"); strings.Contains(text, "[object ") || strings.Contains(text, "undefined") {
		b.t.Errorf("page %s shows a value the page did not format:\n%s", route, text)
	}
}
