package staging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
)

// AppDir is where the app lives in a droplet, as in Cloud Foundry.
const AppDir = "/home/vcap/app"

// logTailLines is how many lines of staging output a result carries.
const logTailLines = 50

// Config configures a Stager.
type Config struct {
	// CacheDir holds the stack layer cache and the work folders.
	CacheDir string
	Log      *slog.Logger
	// Client makes blob store clients; nil uses blobstore.NewClient.
	Client func(baseURL string) *blobstore.Client
}

// Stager builds droplets.
type Stager struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	stack []byte // the stack layer's tar, once built
}

// New prepares a stager.
func New(cfg Config) (*Stager, error) {
	if cfg.CacheDir == "" {
		return nil, fmt.Errorf("staging: a cache folder is required")
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("staging: creating cache folder: %w", err)
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = blobstore.NewClient
	}
	return &Stager{cfg: cfg, log: cfg.Log}, nil
}

// Stage fetches the request's source from the blob store, builds it with
// its buildpack, packs stack + app into a droplet and pushes the droplet to
// the blob store. Every progress line goes to out. On failure the result
// carries the error and the log tail, and the error is returned too.
func (s *Stager) Stage(ctx context.Context, req bus.StageRequest, out func(string)) (bus.StageResult, error) {
	var tail []string
	say := func(line string) {
		tail = append(tail, line)
		if len(tail) > logTailLines {
			tail = tail[len(tail)-logTailLines:]
		}
		if out != nil {
			out(line)
		}
	}
	res, err := s.stage(ctx, req, say)
	if err != nil {
		say("staging failed: " + err.Error())
		res = bus.StageResult{Error: err.Error()}
	}
	res.LogTail = tail
	return res, err
}

func (s *Stager) stage(ctx context.Context, req bus.StageRequest, say func(string)) (bus.StageResult, error) {
	stack, err := resolveStack(req.Stack)
	if err != nil {
		return bus.StageResult{}, err
	}
	work, err := os.MkdirTemp(s.cfg.CacheDir, "stage-")
	if err != nil {
		return bus.StageResult{}, fmt.Errorf("creating staging folder: %w", err)
	}
	defer os.RemoveAll(work)
	appDir := filepath.Join(work, "app")
	if err := os.Mkdir(appDir, 0o755); err != nil {
		return bus.StageResult{}, fmt.Errorf("creating staging folder: %w", err)
	}

	bs := s.cfg.Client(req.BlobStore)
	say("-----> Downloading app source " + req.Source)
	src, err := bs.Get(ctx, req.Source)
	if err != nil {
		return bus.StageResult{}, fmt.Errorf("downloading the app source: %w", err)
	}
	files, err := unpackSource(src, appDir)
	src.Close()
	if err != nil {
		return bus.StageResult{}, err
	}
	say(fmt.Sprintf("       %d files", files))

	b := Build{Command: req.Command, Env: req.Env}
	bp, err := choose(req.Buildpacks, appDir, b)
	if err != nil {
		return bus.StageResult{}, err
	}
	say(fmt.Sprintf("-----> %s buildpack (stack %s)", bp.Name(), stack))
	start, err := bp.Build(ctx, appDir, b, say)
	if err != nil {
		return bus.StageResult{}, err
	}

	img, err := s.droplet(appDir, filepath.Join(work, "app.tar"), bp.Name(), stack, start)
	if err != nil {
		return bus.StageResult{}, err
	}
	size := int64(0)
	if ls, err := img.Layers(); err == nil {
		for _, l := range ls {
			if n, err := l.Size(); err == nil {
				size += n
			}
		}
	}
	say(fmt.Sprintf("-----> Uploading droplet (%.1f MB)", float64(size)/(1<<20)))
	digest, err := bs.PushImage(ctx, img)
	if err != nil {
		return bus.StageResult{}, fmt.Errorf("uploading the droplet: %w", err)
	}
	say("-----> Droplet " + digest)
	say("       start command: " + start)
	return bus.StageResult{Droplet: digest, Buildpack: bp.Name(), StartCommand: start}, nil
}

// droplet builds the OCI image: stack layer, app layer, and a config that
// runs the start command as vcap in the app folder.
func (s *Stager) droplet(appDir, appTar, buildpack, stack, start string) (v1.Image, error) {
	stackTar, err := s.stackTar()
	if err != nil {
		return nil, err
	}
	stackLayer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(stackTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("stack layer: %w", err)
	}
	f, err := os.Create(appTar)
	if err != nil {
		return nil, fmt.Errorf("app layer: %w", err)
	}
	err = writeAppLayer(f, appDir)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	appLayer, err := tarball.LayerFromFile(appTar, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("app layer: %w", err)
	}
	// Compute the app layer's digests now, while the file exists.
	if _, err := appLayer.Digest(); err != nil {
		return nil, fmt.Errorf("app layer: %w", err)
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: stackLayer, History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "driftless stack " + stack}},
		mutate.Addendum{Layer: appLayer, History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "driftless buildpack " + buildpack}},
	)
	if err != nil {
		return nil, fmt.Errorf("assembling droplet: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("assembling droplet: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: Epoch}
	cf.Config = v1.Config{
		Cmd:        []string{"/bin/sh", "-c", start},
		User:       fmt.Sprintf("%d:%d", VcapUID, VcapUID),
		WorkingDir: AppDir,
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/vcap", "LANG=C.UTF-8"},
		Labels:     map[string]string{"driftless.buildpack": buildpack, "driftless.stack": stack},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("assembling droplet config: %w", err)
	}
	return img, nil
}

func (s *Stager) stackTar() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stack == nil {
		b, err := stackLayer(s.cfg.CacheDir)
		if err != nil {
			return nil, err
		}
		s.stack = b
	}
	return s.stack, nil
}
