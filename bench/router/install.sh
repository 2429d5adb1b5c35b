#!/usr/bin/env bash
# The router's peers and load generators (wrk; h2load for HTTP/2) from Debian's packages, for
# bench/router/run.sh and bench/before-after.sh.
set -euo pipefail
need=()
for p in nginx-light haproxy caddy wrk nghttp2-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
