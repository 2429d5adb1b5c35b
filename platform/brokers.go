package platform

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/driftless/driftless/brokers/osb"
	"github.com/driftless/driftless/reconciler"
)

// brokerNameRE is what a broker's name may be (it names environment
// variables and services.yml's broker:).
var brokerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// registeredBroker is a broker client that also tells its URL, without
// credentials (`driftless brokers`).
type registeredBroker struct {
	*osb.Client
	url string
}

// URL is the broker's URL without its user info.
func (b registeredBroker) URL() string { return b.url }

// newBrokers makes a client per --broker NAME=URL. The credentials are the
// URL's user info, or DRIFTLESS_BROKER_<NAME>_USERNAME and _PASSWORD
// (NAME upper-cased, - as _).
func newBrokers(specs []string, log *slog.Logger) ([]reconciler.ServiceBroker, error) {
	var out []reconciler.ServiceBroker
	seen := map[string]bool{}
	for _, spec := range specs {
		name, raw, ok := strings.Cut(spec, "=")
		if !ok || !brokerNameRE.MatchString(name) {
			return nil, fmt.Errorf("--broker %q: want NAME=URL with NAME of lower-case letters, digits, - and _", redactURL(spec))
		}
		if seen[name] {
			return nil, fmt.Errorf("--broker %s is given twice", name)
		}
		seen[name] = true
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--broker %s: %q is not an http(s) URL", name, redactURL(raw))
		}
		env := "DRIFTLESS_BROKER_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		cfg := osb.Config{Name: name, URL: raw, Logger: log.With("component", "broker", "broker", name),
			OriginatingIdentity: func(context.Context) (string, string) { return "driftless", `{"user_id":"driftless-controller"}` }}
		if u.User == nil {
			cfg.Username, cfg.Password = os.Getenv(env+"_USERNAME"), os.Getenv(env+"_PASSWORD")
		}
		c, err := osb.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("--broker %s: %w", name, err)
		}
		clean := *u
		clean.User = nil
		out = append(out, registeredBroker{Client: c, url: clean.String()})
	}
	return out, nil
}

// redactURL drops the user info of any URL in s.
func redactURL(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		if j := strings.Index(s[i+3:], "@"); j >= 0 {
			return s[:i+3] + "…@" + s[i+3+j+1:]
		}
	}
	return s
}
