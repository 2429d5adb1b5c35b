package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/driftless/driftless/manifests"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/platform"
	"github.com/driftless/driftless/reconciler/plan"
	"github.com/driftless/driftless/router"
)

// Flags shared by several roles. Each binds a platform config field, and
// its default is the field's value when the flag is declared: the
// platform's Default…Config.

// consulFlag binds --consul; note says what the role does with it.
func consulFlag(f *pflag.FlagSet, p *string, note string) {
	f.StringVar(p, "consul", *p, "Consul HTTP address"+note)
}

// consulTokenFlag binds --consul-token, which defaults to
// $CONSUL_HTTP_TOKEN (the way to give it: a command line is visible to
// every user of the host). The variable is read here, into the role's
// config, and its value is never shown as the flag's default.
func consulTokenFlag(f *pflag.FlagSet, p *string, note string) {
	f.StringVar(p, "consul-token", *p, "Consul ACL token"+note+" (default: $CONSUL_HTTP_TOKEN; never shown)")
	if v := os.Getenv("CONSUL_HTTP_TOKEN"); v != "" && *p == "" {
		*p = v
	}
}

// dataFlag binds --data.
func dataFlag(f *pflag.FlagSet, p *string, usage string) {
	f.StringVar(p, "data", *p, usage)
}

// httpFlag binds the router's --http.
func httpFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "http", *p, "router listen address")
}

// gitFlags binds the sources' flags (dev and controller).
func gitFlags(f *pflag.FlagSet, g *platform.GitConfig) {
	f.StringArrayVar(&g.Repos, "repo", g.Repos, "git source of manifests: a work tree path (its committed HEAD deploys), a repository path, or a file:// or http(s):// URL; SPACE=… puts its apps in SPACE (repeatable)")
	f.StringVar(&g.Space, "space", g.Space, "space of the apps in --repo")
	f.StringVar(&g.Org, "org", g.Org, "organisation of the space, for org quotas")
	f.StringVar(&g.Policies, "policies", g.Policies, "git source of the platform's policies (*.rego, quotas.yml); default: the built-in bundle")
	f.DurationVar(&g.Poll, "poll", g.Poll, "how often sources are fetched")
}

// controllerFlags binds the controller's flags that dev has too.
func controllerFlags(f *pflag.FlagSet, c *platform.ControllerConfig) {
	gitFlags(f, &c.Git)
	f.StringVar(&c.API, "api", c.API, "API and blob store listen address")
	f.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate the API and blob store serve HTTPS with (dev makes its own CA and certificate when none is given)")
	f.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM key of --tls-cert")
	f.StringVar(&c.Domain, "domain", c.Domain, "default domain of app routes")
	f.StringVar(&c.WebhookSecret, "webhook-secret", cmp.Or(os.Getenv("DRIFTLESS_WEBHOOK_SECRET"), c.WebhookSecret),
		"enables POST /v1/webhook with this HMAC secret (or DRIFTLESS_WEBHOOK_SECRET)")
	f.DurationVar(&c.LostAfter, "lost-after", c.LostAfter, "how long a silent cell stays before its instances move")
	crashFlags(f, &c.Crash)
	previewFlags(f, c)
	f.StringVar(&c.SecretsDir, "secrets", c.SecretsDir, "folder of the platform's keys (binding credentials, user-provided services), made when missing; shared by controllers that stand in for each other (default: <data>/secrets)")
	if pw := os.Getenv("CF_DOCKER_PASSWORD"); pw != "" {
		c.DockerPasswords.Default = pw
	}
	f.Var(&c.DockerPasswords, "docker-password", "password of a docker image registry, REGISTRY=PASSWORD (repeatable; CF_DOCKER_PASSWORD for any other registry); used by the controller's staging only, never shown")
	f.StringArrayVar(&c.Brokers, "broker", c.Brokers, "service broker NAME=URL (Open Service Broker API; credentials in the URL or DRIFTLESS_BROKER_<NAME>_USERNAME/_PASSWORD; repeatable)")
	f.DurationVar(&c.Journal.MaxAge, "log-retention", c.Journal.MaxAge, "how long log lines and events are kept (JetStream)")
	f.Var(bytesValue{&c.Journal.MaxBytes}, "log-max-bytes", "most log lines kept per space, and events kept, e.g. 1G (the oldest go first)")
	f.IntVar(&c.Journal.Replicas, "log-replicas", c.Journal.Replicas, "NATS servers keeping each log and event stream (3 in a cluster of three)")
}

// natsClientFlags binds a role's NATS credential and TLS files.
func natsClientFlags(f *pflag.FlagSet, c *platform.NATSClientConfig) {
	f.StringVar(&c.User, "nats-user", c.User, "NATS user of this process (with --nats)")
	f.StringVar(&c.Password, "nats-password", c.Password, "password of --nats-user (default: $"+platform.NATSPasswordEnv+"; never shown)")
	f.StringVar(&c.CAFile, "nats-ca", c.CAFile, "PEM of the authorities the NATS server's certificate chains to (TLS)")
	f.StringVar(&c.CertFile, "nats-cert", c.CertFile, "client certificate for NATS servers that verify clients (with --nats-key)")
	f.StringVar(&c.KeyFile, "nats-key", c.KeyFile, "key of --nats-cert")
}

// natsServerFlags binds the controller's embedded NATS server's users and
// TLS.
func natsServerFlags(f *pflag.FlagSet, c *platform.ControllerConfig) {
	f.StringVar(&c.NATSUsersFile, "nats-users", c.NATSUsersFile, "YAML file (mode 0600) of the cells' and routers' users of the embedded NATS server: users: [{user, password, role: cell|router, cell}]")
	f.StringVar(&c.NATSTLSCert, "nats-tls-cert", c.NATSTLSCert, "certificate of the embedded NATS server (TLS, with --nats-tls-key; the controller's own connection trusts --nats-ca)")
	f.StringVar(&c.NATSTLSKey, "nats-tls-key", c.NATSTLSKey, "key of --nats-tls-cert")
}

// previewFlags binds the flags of pull-request previews and of the forge
// they report to.
func previewFlags(f *pflag.FlagSet, c *platform.ControllerConfig) {
	f.DurationVar(&c.PreviewIdle, "preview-idle", c.PreviewIdle, "a preview's app with no request for this long sleeps until its next request (negative: never)")
	f.StringVar(&c.Forge.API, "forge-api", c.Forge.API, "forge API root for commit statuses and open pull requests (https://api.github.com, https://HOST/api/v1 for Gitea, https://HOST/api/v4 for GitLab)")
	f.StringVar(&c.Forge.Token, "forge-token", c.Forge.Token, "token for --forge-api (default: $DRIFTLESS_FORGE_TOKEN; never shown)")
	f.StringVar(&c.Forge.Kind, "forge", c.Forge.Kind, "kind of forge of repositories no webhook named yet: github, gitea, forgejo or gitlab")
	f.DurationVar(&c.PullRequestPoll, "pr-poll", c.PullRequestPoll, "how often open pull requests are listed through --forge-api (the webhooks' safety net)")
	f.StringVar(&c.RoutesURL, "routes-url", c.RoutesURL, "scheme and port users reach routes on, for the links of commit statuses (e.g. https:// or http://:8080)")
}

// crashFlags binds the crash policy's flags.
func crashFlags(f *pflag.FlagSet, p *plan.CrashPolicy) {
	f.IntVar(&p.QuickRestarts, "crash-quick-restarts", p.QuickRestarts, "crashes in a row restarted at once before backing off")
	f.DurationVar(&p.Backoff, "crash-backoff", p.Backoff, "first wait after the quick restarts; doubles with every crash")
	f.DurationVar(&p.MaxBackoff, "crash-backoff-max", p.MaxBackoff, "longest wait between restarts of a crashing instance")
	f.DurationVar(&p.ResetAfter, "crash-reset-after", p.ResetAfter, "running this long clears an instance's crash count")
}

// cellFlags binds the cell's flags that dev has too; memory names the
// flag of the memory offered (--cell-memory in dev, --memory on agents),
// containerdNote says what the role does when containerd does not answer.
func cellFlags(f *pflag.FlagSet, a *platform.AgentConfig, memory, containerdNote string) {
	f.StringVar(&a.Runtime.Address, "containerd", a.Runtime.Address, "containerd socket"+containerdNote)
	f.StringVar(&a.Network.Bridge, "bridge", a.Network.Bridge, "bridge of the cell's containers")
	f.StringVar(&a.Network.Subnet, "subnet", a.Network.Subnet, "subnet of the cell's containers")
	f.Var(&portsValue{&a.PortMin, &a.PortMax}, "ports", "host-port range of instances")
	f.Var(sizeValue{&a.Capacity.MemoryMB}, memory, "memory the cell offers to instances, e.g. 16G (default: the host's)")
}

// portsValue is a host-port range flag, MIN-MAX.
type portsValue struct{ min, max *int }

func (v *portsValue) String() string {
	if v.min == nil {
		return ""
	}
	return fmt.Sprintf("%d-%d", *v.min, *v.max)
}

func (v *portsValue) Set(s string) error {
	lo, hi, ok := strings.Cut(s, "-")
	a, err1 := strconv.Atoi(lo)
	b, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || a < 1024 || b > 65535 || a > b {
		return fmt.Errorf("port range %q: want MIN-MAX within 1024-65535", s)
	}
	*v.min, *v.max = a, b
	return nil
}

func (v *portsValue) Type() string { return "MIN-MAX" }

// sizeValue is a memory size flag ("8G", "512M"), kept in MB; 0 prints as
// empty (the host's).
type sizeValue struct{ mb *int64 }

func (v sizeValue) String() string {
	if v.mb == nil || *v.mb == 0 {
		return ""
	}
	return fmt.Sprintf("%dM", *v.mb)
}

func (v sizeValue) Set(s string) error {
	mb, err := manifests.ParseSize(s)
	if err != nil {
		return fmt.Errorf("reading the size: %w", err)
	}
	*v.mb = int64(mb)
	return nil
}

func (v sizeValue) Type() string { return "size" }

// bytesValue is a size flag ("1G") kept in bytes.
type bytesValue struct{ b *int64 }

func (v bytesValue) String() string {
	if v.b == nil {
		return ""
	}
	return fmt.Sprintf("%dM", *v.b>>20)
}

func (v bytesValue) Set(s string) error {
	mb, err := manifests.ParseSize(s)
	if err != nil {
		return fmt.Errorf("reading the size: %w", err)
	}
	*v.b = int64(mb) << 20
	return nil
}

func (v bytesValue) Type() string { return "size" }

// balanceValue is a balancing flag, checked by model.ParseBalance.
type balanceValue struct{ b *model.Balance }

func (v balanceValue) String() string {
	if v.b == nil {
		return ""
	}
	return string(*v.b)
}

func (v balanceValue) Set(s string) error {
	b, err := model.ParseBalance(s)
	if err != nil {
		return err
	}
	*v.b = b
	return nil
}

func (v balanceValue) Type() string { return "balancing" }

// certsValue is a repeatable CERT.pem:KEY.pem flag.
type certsValue struct{ certs *[]router.CertFile }

func (v certsValue) String() string {
	if v.certs == nil || len(*v.certs) == 0 {
		return "" // no default shown
	}
	var s []string
	for _, c := range *v.certs {
		s = append(s, c.Cert+":"+c.Key)
	}
	return "[" + strings.Join(s, ",") + "]"
}

func (v certsValue) Set(s string) error {
	cert, key, ok := strings.Cut(s, ":")
	if !ok || cert == "" || key == "" {
		return fmt.Errorf("%q: want CERT.pem:KEY.pem", s)
	}
	*v.certs = append(*v.certs, router.CertFile{Cert: cert, Key: key})
	return nil
}

func (v certsValue) Type() string { return "CERT:KEY" }

// prefixesValue is a repeatable network flag, e.g. 10.0.0.0/8.
type prefixesValue struct{ p *[]netip.Prefix }

func (v prefixesValue) String() string {
	if v.p == nil || len(*v.p) == 0 {
		return "" // no default shown
	}
	var s []string
	for _, p := range *v.p {
		s = append(s, p.String())
	}
	return "[" + strings.Join(s, ",") + "]"
}

func (v prefixesValue) Set(s string) error {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return fmt.Errorf("reading the network: %w", err)
	}
	*v.p = append(*v.p, p)
	return nil
}

func (v prefixesValue) Type() string { return "network" }
