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

# Log rate limits, as Cloud Foundry's space quota log rate limit:
# quotas.yml's log_rate_limit (bytes per second; -1 or absent: none)
# bounds the total of instances × log-rate-limit-per-second over the
# space's process types, and no process type that runs instances may log
# without a limit there. An app's or process's log_rate_limit is -1 when
# it has none.
log_rate(x) := object.get(x, "log_rate_limit", -1)

# log_procs(a) are an app's process types with their instances and log
# rate limits, web first.
log_procs(a) := array.concat(
	[{"type": "web", "instances": a.instances, "rate": log_rate(a)}],
	[{"type": p.type, "instances": p.instances, "rate": log_rate(p)} | some p in object.get(a, "processes", [])],
)

app_log_rate(a) := sum([r | some p in log_procs(a); p.instances > 0; p.rate >= 0; r := p.instances * p.rate])

total_log_rate := sum([app_log_rate(a) | some a in input.apps])

log_rate_quota := limit if {
	limit := quota("log_rate_limit")
	limit >= 0
}

# who names a process type of an app in messages.
who(a, p) := sprintf("app %s", [a.name]) if p.type == "web"

else := sprintf("process %s of app %s", [p.type, a.name])

# Over the total, each app that counts towards it is told (and located).
deny contains v if {
	limit := log_rate_quota
	total_log_rate > limit
	some a in input.apps
	share := app_log_rate(a)
	share > 0
	v := {"app": a.name, "msg": sprintf("space %s would log up to %d bytes/sec (instances × log-rate-limit-per-second), over its log_rate_limit quota of %d bytes/sec; app %s's instances account for %d bytes/sec", [input.space, total_log_rate, limit, a.name, share])}
}

deny contains v if {
	limit := log_rate_quota
	some a in input.apps
	some p in log_procs(a)
	p.instances > 0
	p.rate < 0
	v := {"app": a.name, "msg": sprintf("%s has no log rate limit, but space %s has a log_rate_limit quota of %d bytes/sec: give it log-rate-limit-per-second (e.g. 1K)", [who(a, p), input.space, limit])}
}
