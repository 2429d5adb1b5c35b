# Docker images (manifest docker:): the registries a space may pull from
# (quotas.yml `registries:`, absent: any) and the images allowed to say
# they run as root (`root_images:`, prefixes of image references; absent:
# none). Instances of an allowed root image still run as uid 2000.
package driftless.images

import rego.v1

setting(key) := v if {
	v := data.quotas.spaces[input.space][key]
} else := data.quotas["default"][key]

registry(image) := r if {
	parts := split(image, "/")
	count(parts) > 1
	contains(parts[0], ".")
	r := parts[0]
} else := r if {
	parts := split(image, "/")
	count(parts) > 1
	contains(parts[0], ":")
	r := parts[0]
} else := "docker.io"

deny contains v if {
	ok := setting("registries")
	some a in input.apps
	a.docker != null
	not registry(a.docker.image) in ok
	v := {"app": a.name, "msg": sprintf("app %s runs image %s from registry %s; the space allows %s", [a.name, a.docker.image, registry(a.docker.image), concat(", ", ok)])}
}

allow_root_image if {
	some prefix in setting("root_images")
	startswith(input.app.docker.image, prefix)
}
