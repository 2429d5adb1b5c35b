# Pull-request previews (spaces <space>-pr-<N>, for which the platform
# gives input.preview: number, branch, author, labels) get small apps: one
# instance each, at most 256 MB.
package driftless.preview

import rego.v1

preview if input.preview != null

deny contains v if {
	preview
	some a in input.apps
	a.instances > 1
	v := {"app": a.name, "msg": sprintf("preview app %s asks for %d instances; previews run one", [a.name, a.instances])}
}

deny contains v if {
	preview
	some a in input.apps
	a.memory_mb > 256
	v := {"app": a.name, "msg": sprintf("preview app %s asks for %d MB; previews get at most 256 MB", [a.name, a.memory_mb])}
}
