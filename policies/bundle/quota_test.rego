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
