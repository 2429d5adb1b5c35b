package staging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/driftless/driftless/blobstore"
	"github.com/driftless/driftless/bus"
	"github.com/driftless/driftless/model"
)

// AppDir is where the app lives in a droplet, as in Cloud Foundry.
const AppDir = "/home/vcap/app"

// logTailLines is how many lines of staging output a result carries.
const logTailLines = 50

// Config configures a Stager.
type Config struct {
	// CacheDir holds the stack layer cache, the build caches and the work
	// folders.
	CacheDir string
	// StacksDir holds the root file systems of the stacks built on the
	// cell (scripts/build-stack.sh), e.g. <StacksDir>/bookworm/rootfs.
	StacksDir string
	// Runner runs compile steps in containers; nil refuses buildpacks
	// that compile.
	Runner Runner
	// Cell is what the cell offers buildpacks (Go toolchain, proxies,
	// the static server).
	Cell Cell
	// TrustedCAs is the cell's CA bundle, bound over the stack's in
	// compile steps so that they trust what the cell trusts (e.g. a
	// proxy's CA in front of the module proxy or npm); default
	// CACertsPath when it exists.
	TrustedCAs string
	// CompileMemoryMB is the memory limit of a compile step (default 2048).
	CompileMemoryMB int64
	Log             *slog.Logger
	// Client makes blob store clients; nil uses blobstore.NewClient.
	Client func(baseURL string) *blobstore.Client
}

// Runner runs a compile step in a container of a stack.
type Runner interface {
	Compile(ctx context.Context, job CompileJob, out func(string)) error
}

// CompileJob is one compile step: a script run as vcap in AppDir of an
// image of the stack, with folders of the cell mounted.
type CompileJob struct {
	// ID names the step (and its container).
	ID string
	// Image is the stack image's reference in the blob store (the cell's
	// configuration says whether it is reached over plain HTTP).
	Image    string
	Script   string
	Env      []string
	Mounts   []Mount
	MemoryMB int64
}

// Stager builds droplets.
type Stager struct {
	cfg Config
	log *slog.Logger
	// appLocks serialises stagings of one app on this cell: they share
	// the app's build cache.
	mu       sync.Mutex
	appLocks map[string]*sync.Mutex
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
	if cfg.CompileMemoryMB == 0 {
		cfg.CompileMemoryMB = 2048
	}
	if cfg.TrustedCAs == "" {
		if _, err := os.Stat(CACertsPath); err == nil {
			cfg.TrustedCAs = CACertsPath
		}
	}
	return &Stager{cfg: cfg, log: cfg.Log, appLocks: map[string]*sync.Mutex{}}, nil
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

func (s *Stager) appLock(space, app string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := space + "/" + app
	if s.appLocks[key] == nil {
		s.appLocks[key] = &sync.Mutex{}
	}
	return s.appLocks[key]
}

func (s *Stager) stage(ctx context.Context, req bus.StageRequest, say func(string)) (bus.StageResult, error) {
	work, err := os.MkdirTemp(s.cfg.CacheDir, "stage-")
	if err != nil {
		return bus.StageResult{}, fmt.Errorf("creating staging folder: %w", err)
	}
	defer os.RemoveAll(work)
	srcDir, appDir := filepath.Join(work, "source"), filepath.Join(work, "app")

	bs := s.cfg.Client(req.BlobStore)
	say("-----> Downloading app source " + req.Source)
	srcTar := filepath.Join(work, "source.tar")
	if err := download(ctx, bs, req.Source, srcTar); err != nil {
		return bus.StageResult{}, err
	}
	var files int
	for _, dir := range []string{srcDir, appDir} {
		if files, err = unpackFile(srcTar, dir); err != nil {
			return bus.StageResult{}, err
		}
	}
	say(fmt.Sprintf("       %d files", files))

	b := Build{Command: req.Command, Env: req.Env}
	bp, err := choose(req.Buildpacks, appDir, b)
	if err != nil {
		return bus.StageResult{}, err
	}
	stack, err := resolveStack(req.Stack, bp)
	if err != nil {
		return bus.StageResult{}, err
	}
	say(fmt.Sprintf("-----> %s buildpack (stack %s)", bp.Name(), stack))
	if len(req.Buildpacks) == 1 && strings.Contains(req.Buildpacks[0], "://") {
		say(fmt.Sprintf("       warning: buildpack %s is not fetched: driftless's built-in %s buildpack stages the app", req.Buildpacks[0], bp.Name()))
	}
	plan, err := bp.Prepare(appDir, b, s.cfg.Cell, say)
	if err != nil {
		return bus.StageResult{}, err
	}
	stackFile, err := stackLayerFile(s.cfg.CacheDir, s.cfg.StacksDir, stack)
	if err != nil {
		return bus.StageResult{}, err
	}
	var layerFiles []string
	for _, l := range plan.Layers {
		f, err := cellLayerFile(s.cfg.CacheDir, s.cfg.StacksDir, stack, l)
		if err != nil {
			return bus.StageResult{}, err
		}
		layerFiles = append(layerFiles, f)
	}
	if plan.Compile != "" {
		if err := s.compile(ctx, req, bs, bp.Name(), stack, stackFile, srcDir, appDir, plan, say); err != nil {
			return bus.StageResult{}, err
		}
	}
	start := plan.Start
	if web := readProcfile(appDir)[model.ProcessWeb]; web != "" {
		start = web
		say("       start command from Procfile: " + web)
	}
	if strings.TrimSpace(req.Command) != "" {
		start = req.Command
	}
	if strings.TrimSpace(start) == "" {
		return bus.StageResult{}, fmt.Errorf("no start command: give one in the manifest or a Procfile web: line")
	}

	img, err := s.droplet(appDir, filepath.Join(work, "app.tar"), stackFile, layerFiles, plan.Layers, bp.Name(), stack, start)
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
	return bus.StageResult{Droplet: digest, Buildpack: bp.Name(), StartCommand: start, Procfile: readProcfile(appDir)}, nil
}

// compile runs the buildpack's compile step in a container of the stack,
// with the source read-only, the app folder and the app's build cache
// writable, and the buildpack's tools read-only.
func (s *Stager) compile(ctx context.Context, req bus.StageRequest, bs *blobstore.Client, buildpack, stack, stackFile,
	srcDir, appDir string, plan Plan, say func(string)) error {
	if s.cfg.Runner == nil {
		return fmt.Errorf("the %s buildpack compiles, and this stager has no container runner", buildpack)
	}
	lock := s.appLock(req.Space, req.App)
	lock.Lock()
	defer lock.Unlock()
	cache := filepath.Join(s.cfg.CacheDir, "build-cache", safeName(req.Space)+"_"+safeName(req.App), buildpack)
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return fmt.Errorf("creating the build cache: %w", err)
	}
	for _, d := range []string{appDir, cache} {
		if err := chownTree(d, model.VcapUID, model.VcapUID); err != nil {
			return fmt.Errorf("handing %s to vcap: %w", d, err)
		}
	}
	ref, err := s.stackImage(ctx, bs, req.BlobStore, stack, stackFile)
	if err != nil {
		return err
	}
	say("-----> Compiling in a container of stack " + stack)
	job := CompileJob{
		ID: "stage-" + safeName(req.ReleaseID), Image: ref,
		Script: plan.Compile, Env: plan.CompileEnv, MemoryMB: s.cfg.CompileMemoryMB,
		Mounts: append([]Mount{
			{Source: srcDir, Destination: SourceDir, ReadOnly: true},
			{Source: appDir, Destination: AppDir},
			{Source: cache, Destination: CacheDir},
		}, plan.Tools...),
	}
	if s.cfg.TrustedCAs != "" {
		job.Mounts = append(job.Mounts, Mount{Source: s.cfg.TrustedCAs, Destination: CACertsPath, ReadOnly: true})
		job.Env = append(job.Env, "SSL_CERT_FILE="+CACertsPath, "NODE_EXTRA_CA_CERTS="+CACertsPath)
	}
	if err := s.cfg.Runner.Compile(ctx, job, say); err != nil {
		return fmt.Errorf("%s buildpack: %w", buildpack, err)
	}
	return nil
}

// stackImage pushes the stack as an image (its layer and a config that
// runs as vcap) to the blob store and returns its reference.
func (s *Stager) stackImage(ctx context.Context, bs *blobstore.Client, base, stack, stackFile string) (string, error) {
	layer, err := tarball.LayerFromFile(stackFile, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", fmt.Errorf("stack layer: %w", err)
	}
	img, err := image(stack, start0, layer)
	if err != nil {
		return "", err
	}
	digest, err := bs.PushImage(ctx, img)
	if err != nil {
		return "", fmt.Errorf("uploading the %s stack image: %w", stack, err)
	}
	return blobstore.ImageRef(base, "stacks", stack, digest), nil
}

// start0 is the stack image's default command.
const start0 = "true"

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// safeName makes s usable in a file or container name.
func safeName(s string) string { return unsafeChars.ReplaceAllString(s, "_") }

// download writes blob digest to path.
func download(ctx context.Context, bs *blobstore.Client, digest, path string) error {
	rc, err := bs.Get(ctx, digest)
	if err != nil {
		return fmt.Errorf("downloading the app source: %w", err)
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("downloading the app source: %w", err)
	}
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading the app source: %w", err)
	}
	return nil
}

// unpackFile unpacks the source tar at path into dir.
func unpackFile(path, dir string) (int, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, fmt.Errorf("creating staging folder: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("reading the app source: %w", err)
	}
	defer f.Close()
	return unpackSource(f, dir)
}

// droplet builds the OCI image: stack layer, the plan's cell layers (files
// and names), app layer, and a config that runs the start command as vcap
// in the app folder.
func (s *Stager) droplet(appDir, appTar, stackFile string, layerFiles, layerNames []string, buildpack, stack, start string) (v1.Image, error) {
	stackLayer, err := tarball.LayerFromFile(stackFile, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("stack layer: %w", err)
	}
	var layers []layerBy
	for i, f := range layerFiles {
		l, err := tarball.LayerFromFile(f, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("%s layer: %w", layerNames[i], err)
		}
		layers = append(layers, layerBy{l, "driftless layer " + layerNames[i]})
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
	img, err := image(stack, start, stackLayer, append(layers, layerBy{appLayer, "driftless buildpack " + buildpack})...)
	if err != nil {
		return nil, err
	}
	return img, nil
}

// layerBy is a layer and what made it, for the image history.
type layerBy struct {
	layer v1.Layer
	by    string
}

// image assembles an OCI image of the stack layer and the given layers,
// whose config runs start (with /bin/sh -c) as vcap in the app folder,
// with fixed times so the same layers give the same digest.
func image(stack, start string, stackLayer v1.Layer, more ...layerBy) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := []mutate.Addendum{{Layer: stackLayer, History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "driftless stack " + stack}}}
	for _, m := range more {
		adds = append(adds, mutate.Addendum{Layer: m.layer, History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: m.by}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("assembling image: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("assembling image: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: Epoch}
	cf.Config = v1.Config{
		Cmd:          []string{"/bin/sh", "-c", start},
		User:         fmt.Sprintf("%d:%d", model.VcapUID, model.VcapUID),
		WorkingDir:   AppDir,
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/vcap", "LANG=C.UTF-8", "PORT=8080"},
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Labels:       map[string]string{"driftless.stack": stack},
	}
	if len(more) > 0 {
		cf.Config.Labels["driftless.buildpack"] = strings.TrimPrefix(more[len(more)-1].by, "driftless buildpack ")
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, fmt.Errorf("assembling image config: %w", err)
	}
	return img, nil
}
