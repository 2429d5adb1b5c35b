package driftless.quota_test

import rego.v1

import data.driftless.quota

quotas := {
	"default": {"memory": 1024, "instances": 4, "instance_memory": 512, "routes": 2},
	"spaces": {"big": {"memory": 4096}},
	"orgs": {"acme": {"memory": 1500, "instances": 6}},
}

app(name, n, mb) := {"name": name, "instances": n, "memory_mb": mb, "routes": [sprintf("%s.apps.localhost", [name])]}

test_within_quota if {
	count(quota.deny) == 0 with input as {"space": "dev", "apps": [app("a", 2, 256)]} with data.quotas as quotas
}

test_memory_total_over if {
	some v in quota.deny with input as {"space": "dev", "apps": [app("a", 3, 256), app("b", 1, 512)]} with data.quotas as quotas
	contains(v.msg, "1280 MB")
}

test_instances_over if {
	some v in quota.deny with input as {"space": "dev", "apps": [app("a", 5, 64)]} with data.quotas as quotas
	contains(v.msg, "5 instances")
}

test_instance_memory_over if {
	some v in quota.deny with input as {"space": "dev", "apps": [app("fat", 1, 768)]} with data.quotas as quotas
	v.app == "fat"
}

test_space_override if {
	count(quota.deny) == 0 with input as {"space": "big", "apps": [app("a", 4, 512)]} with data.quotas as quotas
}

test_org_memory_over if {
	some v in quota.deny with input as {"space": "dev", "org": "acme", "apps": [app("a", 2, 256)], "org_apps": [app("b", 2, 512)]}
		with data.quotas as quotas
	contains(v.msg, "org acme would use 1536 MB")
}

test_org_within if {
	count(quota.deny) == 0 with input as {"space": "dev", "org": "acme", "apps": [app("a", 1, 256)], "org_apps": [app("b", 1, 256)]}
		with data.quotas as quotas
}

svc(name) := {"name": name, "service": "postgresql", "plan": "small", "broker": "", "user_provided": false, "tags": []}

test_services_within if {
	count(quota.deny) == 0 with input as {"space": "dev", "apps": [], "services": [svc("a"), svc("b")]}
		with data.quotas as {"default": {"services": 2}}
}

test_services_over if {
	some v in quota.deny with input as {"space": "dev", "apps": [], "services": [svc("a"), svc("b"), svc("c")]}
		with data.quotas as {"default": {"services": 2}}
	contains(v.msg, "3 service instances; its quota is 2")
}

# Process types other than web count towards the space's totals, and each
# one's memory against instance_memory.
with_worker(n, mb) := object.union(app("a", 1, 256), {"processes": [{"type": "worker", "instances": n, "memory_mb": mb, "disk_mb": 64}]})

test_processes_count_in_memory if {
	some v in quota.deny with input as {"space": "dev", "apps": [with_worker(2, 400)]} with data.quotas as quotas
	contains(v.msg, "would use 1056 MB of memory")
}

test_processes_count_in_instances if {
	some v in quota.deny with input as {"space": "dev", "apps": [with_worker(4, 32)]} with data.quotas as quotas
	contains(v.msg, "5 instances")
}

test_process_instance_memory_over if {
	some v in quota.deny with input as {"space": "dev", "apps": [with_worker(1, 768)]} with data.quotas as quotas
	contains(v.msg, "process worker of app a")
}

test_processes_within_quota if {
	count(quota.deny) == 0 with input as {"space": "dev", "apps": [with_worker(2, 128)]} with data.quotas as quotas
}

# Log rate limits: log_rate_limit in bytes per second, -1 for none.
lapp(name, n, rate) := object.union(app(name, n, 64), {"log_rate_limit": rate})

logquotas := {"default": {"log_rate_limit": 4096}, "spaces": {"free": {"log_rate_limit": -1}}}

test_log_rate_within if {
	count(quota.deny) == 0 with input as {"space": "dev", "apps": [lapp("a", 2, 1024), lapp("b", 2, 1024)]}
		with data.quotas as logquotas
}

test_log_rate_total_over_names_each_app if {
	vs := quota.deny with input as {"space": "dev", "apps": [lapp("a", 3, 1024), lapp("b", 2, 1024), lapp("c", 0, 1024)]}
		with data.quotas as logquotas
	count(vs) == 2
	some v in vs
	v.app == "a"
	contains(v.msg, "space dev would log up to 5120 bytes/sec")
	contains(v.msg, "quota of 4096 bytes/sec; app a's instances account for 3072 bytes/sec")
}

test_log_rate_counts_processes if {
	a := object.union(lapp("a", 1, 1024), {"processes": [{"type": "worker", "instances": 2, "memory_mb": 64, "log_rate_limit": 2048}]})
	some v in quota.deny with input as {"space": "dev", "apps": [a]} with data.quotas as logquotas
	contains(v.msg, "would log up to 5120 bytes/sec")
}

test_log_rate_unlimited_denied if {
	some v in quota.deny with input as {"space": "dev", "apps": [lapp("a", 1, -1)]} with data.quotas as logquotas
	v.app == "a"
	v.msg == "app a has no log rate limit, but space dev has a log_rate_limit quota of 4096 bytes/sec: give it log-rate-limit-per-second (e.g. 1K)"
}

test_log_rate_unlimited_process_denied if {
	a := object.union(lapp("a", 1, 1024), {"processes": [{"type": "worker", "instances": 1, "memory_mb": 64}]})
	some v in quota.deny with input as {"space": "dev", "apps": [a]} with data.quotas as logquotas
	startswith(v.msg, "process worker of app a has no log rate limit")
}

test_log_rate_unlimited_without_instances_allowed if {
	count(quota.deny) == 0 with input as {"space": "dev", "apps": [lapp("a", 0, -1)]} with data.quotas as logquotas
}

test_log_rate_space_without_quota if {
	count(quota.deny) == 0 with input as {"space": "free", "apps": [lapp("a", 1, -1), lapp("b", 9, 1024)]}
		with data.quotas as logquotas
	count(quota.deny) == 0 with input as {"space": "dev", "apps": [lapp("a", 1, -1)]} with data.quotas as quotas
}
