package runtime

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultPath is the PATH of an image whose config sets no environment,
// as containerd gives it.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// withImageConfig is containerd's oci.WithImageConfig (the image's ENV,
// ENTRYPOINT and CMD, WORKDIR) without its USER: every container runs as
// Spec.UID and GID (2000), never as the image's user, and a user name
// (`USER app`, `USER root` of a docker image) must not need an
// /etc/passwd in the image to be looked up and then overridden.
func withImageConfig(img containerd.Image) oci.SpecOpts {
	return func(ctx context.Context, client oci.Client, c *containers.Container, s *oci.Spec) error {
		desc, err := img.Config(ctx)
		if err != nil {
			return fmt.Errorf("the image's config: %w", err)
		}
		if desc.MediaType != ocispec.MediaTypeImageConfig && desc.MediaType != images.MediaTypeDockerSchema2Config {
			return fmt.Errorf("unknown image config media type %s", desc.MediaType)
		}
		raw, err := content.ReadBlob(ctx, img.ContentStore(), desc)
		if err != nil {
			return fmt.Errorf("reading the image's config: %w", err)
		}
		var image ocispec.Image
		if err := json.Unmarshal(raw, &image); err != nil {
			return fmt.Errorf("decoding the image's config: %w", err)
		}
		cfg := image.Config
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		env := cfg.Env
		if len(env) == 0 {
			env = []string{defaultPath}
		}
		overrides := s.Process.Env
		s.Process.Env = append([]string(nil), env...)
		if err := oci.WithEnv(overrides)(ctx, client, c, s); err != nil {
			return err
		}
		s.Process.Args = append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
		s.Process.Cwd = cfg.WorkingDir
		if s.Process.Cwd == "" {
			s.Process.Cwd = "/"
		}
		return nil
	}
}
