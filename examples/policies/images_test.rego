package driftless.images_test

import rego.v1

import data.driftless.images

quotas := {"default": {"registries": ["registry.example.com", "127.0.0.1:5000"], "root_images": ["registry.example.com/platform/"]}, "spaces": {"free": {}}}

app(image) := {"space": "dev", "apps": [{"name": "a", "docker": {"image": image, "username": ""}}]}

test_allowed_registry if {
	count(images.deny) == 0 with input as app("registry.example.com/team/web:v1") with data.quotas as quotas
	count(images.deny) == 0 with input as app("127.0.0.1:5000/test/app:v1") with data.quotas as quotas
}

test_docker_hub_refused if {
	some v in images.deny with input as app("nginx:1.27") with data.quotas as quotas
	contains(v.msg, "from registry docker.io")
}

test_buildpack_apps_pass if {
	count(images.deny) == 0 with input as {"space": "dev", "apps": [{"name": "a", "docker": null}]} with data.quotas as quotas
}

test_no_list_allows_all if {
	count(images.deny) == 0 with input as app("nginx") with data.quotas as {"default": {}, "spaces": {}}
}

test_root_image_allowed if {
	images.allow_root_image with input as {"space": "dev", "app": {"name": "a", "docker": {"image": "registry.example.com/platform/proxy:2", "user": "root"}}}
		with data.quotas as quotas
}

test_root_image_not_allowed if {
	not images.allow_root_image with input as {"space": "dev", "app": {"name": "a", "docker": {"image": "registry.example.com/team/web:1", "user": "0"}}}
		with data.quotas as quotas
}
