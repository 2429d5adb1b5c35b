# Buildpacks and stacks a space may use: quotas.yml `buildpacks:` and
# `stacks:` lists (absent: any).
package driftless.buildpacks

import rego.v1

allowed(key) := v if {
	v := data.quotas.spaces[input.space][key]
} else := data.quotas["default"][key]

deny contains v if {
	ok := allowed("buildpacks")
	some a in input.apps
	some b in a.buildpacks
	not b in ok
	v := {"app": a.name, "msg": sprintf("app %s uses buildpack %s; the space allows %s", [a.name, b, concat(", ", ok)])}
}

deny contains v if {
	ok := allowed("stacks")
	some a in input.apps
	a.stack != ""
	not a.stack in ok
	v := {"app": a.name, "msg": sprintf("app %s runs on stack %s; the space allows %s", [a.name, a.stack, concat(", ", ok)])}
}
