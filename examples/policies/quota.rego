# The space quotas of quotas.yml: totals over the whole proposed desired
# state of a space, and the largest instance.
package driftless.quota

import rego.v1

# quota is the space's own value for key, else the default's.
quota(key) := v if {
	v := data.quotas.spaces[input.space][key]
} else := data.quotas["default"][key]

total_memory := sum([m | some a in input.apps; m := a.instances * a.memory_mb])

total_instances := sum([n | some a in input.apps; n := a.instances])

total_routes := count({r | some a in input.apps; some r in a.routes})

deny contains v if {
	limit := quota("memory")
	total_memory > limit
	v := {"msg": sprintf("space %s would use %d MB of memory (instances × memory); its quota is %d MB", [input.space, total_memory, limit])}
}

deny contains v if {
	limit := quota("instances")
	total_instances > limit
	v := {"msg": sprintf("space %s would run %d instances; its quota is %d", [input.space, total_instances, limit])}
}

deny contains v if {
	limit := quota("instance_memory")
	some a in input.apps
	a.memory_mb > limit
	v := {"app": a.name, "msg": sprintf("app %s asks for %d MB per instance; the space allows at most %d MB", [a.name, a.memory_mb, limit])}
}

deny contains v if {
	limit := quota("routes")
	total_routes > limit
	v := {"msg": sprintf("space %s would have %d routes; its quota is %d", [input.space, total_routes, limit])}
}

# Org quotas (quotas.yml `orgs:`): totals over every space of the org.
org_total_memory := total_memory + sum([m | some a in input.org_apps; m := a.instances * a.memory_mb])

org_total_instances := total_instances + sum([n | some a in input.org_apps; n := a.instances])

deny contains v if {
	limit := data.quotas.orgs[input.org].memory
	org_total_memory > limit
	v := {"msg": sprintf("org %s would use %d MB of memory over its spaces; its quota is %d MB", [input.org, org_total_memory, limit])}
}

deny contains v if {
	limit := data.quotas.orgs[input.org].instances
	org_total_instances > limit
	v := {"msg": sprintf("org %s would run %d instances over its spaces; its quota is %d", [input.org, org_total_instances, limit])}
}

# Service instances of the space (services.yml), against quotas.yml's
# `services:` (user-provided ones count too, as in Cloud Foundry).
deny contains v if {
	limit := quota("services")
	n := count(input.services)
	n > limit
	v := {"msg": sprintf("space %s would have %d service instances; its quota is %d", [input.space, n, limit])}
}
