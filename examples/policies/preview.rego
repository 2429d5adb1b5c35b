# Pull-request previews (spaces <space>-pr-<N>, for which the platform
# gives input.preview: number, branch, author, labels, source, and open —
# the previews of that source deployed at once, this one included) live
# within the budget of quotas.yml's `previews:`, and each app of a preview
# gets at most 256 MB.
package driftless.preview

import rego.v1

preview if input.preview != null

budget(key) := data.quotas.previews[key]

deny contains v if {
	preview
	limit := budget("per_source")
	input.preview.open > limit
	v := {"msg": sprintf("source %s already has %d preview(s) deployed; its budget is %d at once (quotas.yml previews.per_source)", [input.preview.source, input.preview.open - 1, limit])}
}

deny contains v if {
	preview
	limit := budget("memory")
	used := sum([m | some a in input.apps; m := a.instances * a.memory_mb])
	used > limit
	v := {"msg": sprintf("preview of pull request %d would use %d MB; a preview gets at most %d MB (quotas.yml previews.memory)", [input.preview.number, used, limit])}
}

deny contains v if {
	preview
	some a in input.apps
	a.memory_mb > 256
	v := {"app": a.name, "msg": sprintf("preview app %s asks for %d MB; previews get at most 256 MB", [a.name, a.memory_mb])}
}
