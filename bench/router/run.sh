#!/usr/bin/env bash
# The router side by side with nginx, HAProxy and Caddy under the same wrk
# load (see main.go); -https compares HTTPS with nginx's (https.go), -roles
# the router's own logs and `driftless dev` (roles.go). Installs them from
# Debian's packages. Results go into docs/benchmarks.md with this command.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash bench/router/install.sh
make -s build bin/consul
go build -o bin/router-bench ./bench/router
exec bin/router-bench "$@"
