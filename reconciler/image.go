package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
	"github.com/driftless/driftless/policies"
)

// DockerPasswords are the registry passwords of docker images (manifest
// `docker: {image, username}`), the controller's configuration and never
// git's: per registry host (`--docker-password REGISTRY=PASSWORD`), and a
// Default for any other (CF_DOCKER_PASSWORD, as the cf CLI reads it).
// They are used only by the controller's staging: cells pull the copy in
// the blob store and never see them. String and LogValue name the
// registries, never a password.
type DockerPasswords struct {
	// ByRegistry maps a registry host ("registry.example.com",
	// "127.0.0.1:5000"; Docker Hub is "index.docker.io") to its password.
	ByRegistry map[string]string
	// Default is the password of registries not in ByRegistry ("" for
	// none).
	Default string
}

// Set adds REGISTRY=PASSWORD (a flag's value; Docker Hub may be written
// docker.io).
func (p *DockerPasswords) Set(spec string) error {
	host, pw, ok := strings.Cut(spec, "=")
	if !ok || host == "" || pw == "" {
		return errors.New("a docker password is REGISTRY=PASSWORD (e.g. registry.example.com=…)")
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("docker password: registry %q: %w", host, err)
	}
	if p.ByRegistry == nil {
		p.ByRegistry = map[string]string{}
	}
	p.ByRegistry[reg.RegistryStr()] = pw
	return nil
}

// For returns the password of registry (a host as name.Registry spells
// it).
func (p DockerPasswords) For(registry string) (string, bool) {
	if pw, ok := p.ByRegistry[registry]; ok {
		return pw, true
	}
	return p.Default, p.Default != ""
}

// String names the registries with a password, never a password.
func (p DockerPasswords) String() string {
	regs := make([]string, 0, len(p.ByRegistry)+1)
	for r := range p.ByRegistry {
		regs = append(regs, r)
	}
	slices.Sort(regs)
	if p.Default != "" {
		regs = append(regs, "(any other: CF_DOCKER_PASSWORD)")
	}
	return strings.Join(regs, ",")
}

// Type is the flag's type name.
func (p *DockerPasswords) Type() string { return "REGISTRY=PASSWORD" }

// LogValue logs the registries, never a password.
func (p DockerPasswords) LogValue() slog.Value { return slog.StringValue(p.String()) }

// redact hides every password of p in msg (an error from a registry or a
// transport should never hold one; this makes sure).
func (p DockerPasswords) redact(msg string) string {
	for _, pw := range p.ByRegistry {
		msg = strings.ReplaceAll(msg, pw, "[password]")
	}
	if p.Default != "" {
		msg = strings.ReplaceAll(msg, p.Default, "[password]")
	}
	return msg
}

// stageImage is the staging of a docker release: the image's tag is
// resolved to a digest, its config checked (an image that says it runs as
// root is refused unless a policy's allow_root_image allows it) and the
// image — manifest, config and layers, byte for byte — copied into the
// blob store, where it is the release's droplet: cells pull it pinned by
// digest like any droplet, with no registry credentials, and the app keeps
// running if the registry goes away. A moving tag is resolved at each
// staging of a new release only (as Cloud Foundry does on push and
// restage).
func (s *stager) stageImage(ctx context.Context, rel model.Release) {
	c := s.c
	c.events.Record(model.Event{Kind: model.EventStaging, Space: rel.Space, App: rel.App, Release: rel.ID,
		Message: fmt.Sprintf("copying docker image %s into the blob store", rel.Docker.Image)})
	sctx, cancel := context.WithTimeout(ctx, c.cfg.StagingTimeout)
	defer cancel()
	res, logLines, err := s.copyImage(sctx, rel)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		s.fail(ctx, rel, c.cfg.DockerPasswords.redact(err.Error()), logLines)
	default:
		s.finish(ctx, rel, res, "")
	}
}

// copyImage resolves, checks and copies rel's image; it returns the
// staging result and log.
func (s *stager) copyImage(ctx context.Context, rel model.Release) (bus.StageResult, []string, error) {
	c, d := s.c, rel.Docker
	var logLines []string
	logf := func(format string, args ...any) { logLines = append(logLines, fmt.Sprintf(format, args...)) }
	ref, err := name.ParseReference(d.Image)
	if err != nil {
		return bus.StageResult{}, nil, fmt.Errorf("docker image %q: %w", d.Image, err)
	}
	registry := ref.Context().RegistryStr()
	opts := []remote.Option{remote.WithContext(ctx),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH})}
	if d.Username != "" {
		pw, ok := c.cfg.DockerPasswords.For(registry)
		if !ok {
			return bus.StageResult{}, nil, fmt.Errorf("docker image %s: no password for registry %s (user %s) is configured on the controller: "+
				"start it with --docker-password %s=… or CF_DOCKER_PASSWORD", d.Image, registry, d.Username, registry)
		}
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: d.Username, Password: pw}))
	}
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return bus.StageResult{}, nil, fmt.Errorf("pulling docker image %s as %s: %w", d.Image, userOrAnonymous(d.Username), err)
	}
	digest, err := img.Digest()
	if err != nil {
		return bus.StageResult{}, nil, fmt.Errorf("docker image %s: its digest: %w", d.Image, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return bus.StageResult{}, nil, fmt.Errorf("docker image %s: reading its config: %w", d.Image, err)
	}
	logf("docker image %s is %s@%s", d.Image, ref.Context().Name(), digest)
	if size, err := layersSize(img); err != nil {
		return bus.StageResult{}, logLines, fmt.Errorf("docker image %s: reading its manifest: %w", d.Image, err)
	} else if size > MaxImageBytes {
		return bus.StageResult{}, logLines, fmt.Errorf("docker image %s is %d MB compressed; an image may be at most %d MB",
			d.Image, size>>20, MaxImageBytes>>20)
	}
	user := cfg.Config.User
	if model.IsRootUser(user) {
		allowed, by, err := c.allowsRootImage(ctx, rel, user, digest.String())
		if err != nil {
			return bus.StageResult{}, logLines, err
		}
		if !allowed {
			return bus.StageResult{}, logLines, fmt.Errorf("image %s runs as root (USER %s); driftless runs instances as uid %d — rebuild it with a USER, "+
				"or allow it by policy (a rule %s in a policy package, docs/policies.md)", d.Image, user, model.VcapUID, policies.RootImageRule)
		}
		logf("image runs as root (USER %s), allowed by policy %s: it runs as uid %d", user, strings.Join(by, ", "), model.VcapUID)
	}
	if user == "" {
		user = "none"
	}
	logf("entrypoint %q, cmd %q, working dir %q, user %s (instances run as uid %d)",
		cfg.Config.Entrypoint, cfg.Config.Cmd, cfg.Config.WorkingDir, user, model.VcapUID)
	n, size, err := s.putImage(ctx, img)
	if err != nil {
		return bus.StageResult{}, logLines, fmt.Errorf("copying docker image %s into the blob store: %w", d.Image, err)
	}
	logf("copied %d layer(s), %d bytes new in the blob store", n, size)
	return bus.StageResult{Droplet: digest.String(), Buildpack: model.DockerBuildpack, LogTail: logLines}, logLines, nil
}

// MaxImageBytes bounds the compressed layers of a docker image the
// controller copies into the blob store (a droplet is rarely a tenth of it).
const MaxImageBytes = 8 << 30

// layersSize is the compressed size of img's layers, as its manifest says.
func layersSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

func userOrAnonymous(u string) string {
	if u == "" {
		return "anonymous"
	}
	return "user " + u
}

// allowsRootImage asks the policies in force whether rel's image may run
// although it says root.
func (c *Controller) allowsRootImage(ctx context.Context, rel model.Release, user, digest string) (bool, []string, error) {
	c.mu.Lock()
	set := c.policy
	org := ""
	for _, se := range c.sources {
		if se.space == rel.Space {
			org = se.org
			break
		}
	}
	c.mu.Unlock()
	in := policies.RootImageInput{Space: rel.Space, Org: org, App: policies.ImageApp{Name: rel.App,
		Docker: policies.Docker{Image: rel.Docker.Image, Username: rel.Docker.Username, User: user, Digest: digest}}}
	ok, by, err := set.AllowsRootImage(ctx, in)
	if err != nil {
		return false, nil, fmt.Errorf("asking the policies whether root image %s may run: %w", rel.Docker.Image, err)
	}
	return ok, by, nil
}

// putImage copies img's layers, config and manifest into the blob store
// (blobs it has are not copied again) and returns how many layers it
// copied and their bytes.
func (s *stager) putImage(ctx context.Context, img v1.Image) (int, int64, error) {
	blobs := s.c.cfg.Blobs
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, fmt.Errorf("listing the layers: %w", err)
	}
	copied, total := 0, int64(0)
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return copied, total, fmt.Errorf("a layer's digest: %w", err)
		}
		if blobs.Has(d.String()) {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return copied, total, fmt.Errorf("fetching layer %s: %w", d, err)
		}
		n, err := blobs.PutDigest(ctx, d.String(), rc)
		rc.Close()
		if err != nil {
			return copied, total, fmt.Errorf("storing layer %s: %w", d, err)
		}
		copied++
		total += n
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return copied, total, fmt.Errorf("the config's digest: %w", err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return copied, total, fmt.Errorf("fetching the config: %w", err)
	}
	if _, err := blobs.PutDigest(ctx, cfgName.String(), bytes.NewReader(rawCfg)); err != nil {
		return copied, total, fmt.Errorf("storing the config: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return copied, total, fmt.Errorf("the manifest's digest: %w", err)
	}
	raw, err := img.RawManifest()
	if err != nil {
		return copied, total, fmt.Errorf("fetching the manifest: %w", err)
	}
	// The manifest last: a droplet whose manifest is there has its blobs.
	if _, err := blobs.PutDigest(ctx, digest.String(), bytes.NewReader(raw)); err != nil {
		return copied, total, fmt.Errorf("storing the manifest: %w", err)
	}
	return copied, total, nil
}
