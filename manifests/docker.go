package manifests

import (
	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"

	"github.com/driftless/driftless/model"
)

// readDocker reads `docker: {image, username}` (Cloud Foundry's docker
// lifecycle): the app runs that image instead of a droplet staged from
// its source. The registry password is never in the manifest: the
// controller's configuration gives it (docs/operations.md).
func readDocker(a *appState, k, v *yaml.Node) {
	m, ok := a.mapping(k, v)
	if !ok {
		return
	}
	d := &model.DockerImage{}
	var imageNode *yaml.Node
	for _, p := range a.pairs(m) {
		switch p.key.Value {
		case "image":
			d.Image, _ = a.str(p.key, p.val, false)
			imageNode = resolve(p.val)
		case "username":
			d.Username, _ = a.str(p.key, p.val, false)
		case "password":
			a.errorf(p.key, "docker: a password in the manifest would be in git; the controller's --docker-password REGISTRY=… (or CF_DOCKER_PASSWORD) gives it")
		default:
			a.errorf(p.key, "unknown docker attribute %q (image, username)%s", p.key.Value, suggest(p.key.Value, []string{"image", "username"}))
		}
	}
	switch {
	case imageNode == nil:
		a.errorf(m, "docker needs an image")
		return
	case d.Image == "":
		a.errorf(imageNode, "docker: image is empty")
		return
	}
	if _, err := name.ParseReference(d.Image); err != nil {
		a.errorf(imageNode, "docker: image %q is not an image reference: %v", d.Image, err)
		return
	}
	a.app.Docker = d
}

// checkDocker refuses what cannot go with a docker image: buildpacks (as
// Cloud Foundry does) and a source path (an image has no source).
func (a *appState) checkDocker() {
	if a.app.Docker == nil {
		return
	}
	for _, key := range []string{"buildpacks", "buildpack", "path"} {
		if p, ok := a.app.Fields[key]; ok {
			a.errorf(nodeAt(p), "%s cannot be given with docker: the app runs the image %s, nothing is staged from source", key, a.app.Docker.Image)
		}
	}
}

// checkExtras applies the checks of docker and sidecars that depend on
// other attributes, once all are read.
func (a *appState) checkExtras() {
	a.checkDocker()
	a.checkSidecars()
}
