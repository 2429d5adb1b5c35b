package driftless.previews_test

import rego.v1

import data.driftless.previews

quotas := {"previews": {"per_source": 2, "memory": 512, "instances": 1}}

pr(open) := {"number": 7, "branch": "feature", "author": "ada", "labels": [], "open": open, "source": "web"}

app(name, n, mb) := {"name": name, "instances": n, "memory_mb": mb, "routes": []}

test_within_budget if {
	count(previews.deny) == 0 with input as {"space": "dev-pr-7", "apps": [app("a", 1, 256)], "preview": pr(2)}
		with data.quotas as quotas
}

test_too_many_previews if {
	some v in previews.deny with input as {"space": "dev-pr-7", "apps": [app("a", 1, 64)], "preview": pr(3)}
		with data.quotas as quotas
	contains(v.msg, "already has 2 preview(s)")
	contains(v.msg, "previews.per_source")
}

test_preview_memory_over if {
	some v in previews.deny with input as {"space": "dev-pr-7", "apps": [app("a", 1, 256), app("b", 2, 256)], "preview": pr(1)}
		with data.quotas as quotas
	contains(v.msg, "768 MB")
}

test_production_untouched if {
	count(previews.deny) == 0 with input as {"space": "dev", "apps": [app("a", 9, 4096)], "preview": null}
		with data.quotas as quotas
}

test_no_budget_no_limit if {
	count(previews.deny) == 0 with input as {"space": "dev-pr-7", "apps": [app("a", 1, 4096)], "preview": pr(40)}
		with data.quotas as {}
}
