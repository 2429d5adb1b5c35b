#!/usr/bin/env bash
# The router side by side with nginx, HAProxy and Caddy under the same wrk
# load (see main.go). Installs them from Debian's packages. Results go into
# docs/benchmarks.md with this command.
set -euo pipefail
cd "$(dirname "$0")/../.."
need=()
for p in nginx-light haproxy caddy wrk; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
make -s build bin/consul
go build -o bin/router-bench ./bench/router
exec bin/router-bench "$@"
