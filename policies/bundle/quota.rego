# The space quotas of quotas.yml: totals over the whole proposed desired
# state of a space, and the largest instance.
package driftless.quota

import rego.v1

# quota is the space's own value for key, else the default's.
quota(key) := v if {
	v := data.quotas.spaces[input.space][key]
} else := data.quotas["default"][key]

# app_memory and app_instances count every process type of an app: web
# (the app's own instances and memory_mb) and its other processes.
app_memory(a) := (a.instances * a.memory_mb) + sum([m | some p in object.get(a, "processes", []); m := p.instances * p.memory_mb])

app_instances(a) := a.instances + sum([p.instances | some p in object.get(a, "processes", [])])

total_memory := sum([app_memory(a) | some a in input.apps])

total_instances := sum([app_instances(a) | some a in input.apps])

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
	limit := quota("instance_memory")
	some a in input.apps
	some p in object.get(a, "processes", [])
	p.memory_mb > limit
	v := {"app": a.name, "msg": sprintf("process %s of app %s asks for %d MB per instance; the space allows at most %d MB", [p.type, a.name, p.memory_mb, limit])}
}

deny contains v if {
	limit := quota("routes")
	total_routes > limit
	v := {"msg": sprintf("space %s would have %d routes; its quota is %d", [input.space, total_routes, limit])}
}

# Org quotas (quotas.yml `orgs:`): totals over every space of the org.
org_total_memory := total_memory + sum([app_memory(a) | some a in input.org_apps])

org_total_instances := total_instances + sum([app_instances(a) | some a in input.org_apps])

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
