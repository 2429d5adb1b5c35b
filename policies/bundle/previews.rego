# The budget of pull-request previews, from quotas.yml's `previews:`: how
# many previews of one source at once (per_source) and how much memory one
# preview may use over its apps (memory, in MB). input.preview is null but
# for a preview's space; input.preview.open counts the previews of its
# source deployed at once, this one included. (instances and ttl are
# applied by the controller.)
package driftless.previews

import rego.v1

budget(key) := data.quotas.previews[key]

deny contains v if {
	input.preview != null
	limit := budget("per_source")
	limit > 0
	input.preview.open > limit
	v := {"msg": sprintf("source %s already has %d preview(s) deployed; its budget is %d at once (quotas.yml previews.per_source): close a pull request or raise the budget", [input.preview.source, input.preview.open - 1, limit])}
}

deny contains v if {
	input.preview != null
	limit := budget("memory")
	limit > 0
	used := sum([data.driftless.quota.app_memory(a) | some a in input.apps])
	used > limit
	v := {"msg": sprintf("preview of pull request %d would use %d MB (instances × memory); a preview gets at most %d MB (quotas.yml previews.memory)", [input.preview.number, used, limit])}
}
