package driftless.examples_test

import rego.v1

import data.driftless.preview
import data.driftless.routes

quotas := {"default": {"domains": ["apps.localhost"]}, "spaces": {}}

test_route_on_allowed_domain if {
	count(routes.deny) == 0 with input as {"space": "dev", "apps": [{"name": "a", "routes": ["a.apps.localhost/api"]}]}
		with data.quotas as quotas
}

test_route_on_other_domain if {
	some v in routes.deny with input as {"space": "dev", "apps": [{"name": "a", "routes": ["a.example.com"]}]}
		with data.quotas as quotas
	v.app == "a"
}

budget := {"per_source": 3, "memory": 512}

pr(open) := {"number": 42, "branch": "feature", "author": "ada", "labels": [], "open": open, "source": "examples"}

test_preview_one_small_instance if {
	count(preview.deny) == 0 with input as {"space": "dev-pr-42", "preview": pr(1), "apps": [{"name": "a", "instances": 1, "memory_mb": 128}]}
		with data.quotas.previews as budget
}

test_preview_too_big if {
	count(preview.deny) == 2 with input as {"space": "dev-pr-42", "preview": pr(1), "apps": [{"name": "a", "instances": 3, "memory_mb": 512}]}
		with data.quotas.previews as budget
}

test_preview_over_per_source if {
	some v in preview.deny with input as {"space": "dev-pr-42", "preview": pr(4), "apps": [{"name": "a", "instances": 1, "memory_mb": 64}]}
		with data.quotas.previews as budget
	contains(v.msg, "already has 3 preview(s)")
}

test_not_a_preview if {
	count(preview.deny) == 0 with input as {"space": "dev", "preview": null, "apps": [{"name": "a", "instances": 3, "memory_mb": 512}]}
}
