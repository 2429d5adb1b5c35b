#!/usr/bin/env bash
# Checks that `make demo` works end to end: starts it, waits (bounded) for
# the example app to answer through the router, removes the apps with a
# commit (so no container outlives the check), and stops the platform.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/dl-demo-XXXXXX)
chmod 755 "$dir" # the demo's PostgreSQL (its own user) keeps its cluster under it
log=$dir/demo.log
# The host's NAT rules of the demo's subnet before it starts (left by
# others): after it stops, none of its own may remain.
nat_rules() { iptables -w 5 -t nat -S | grep -F ' 10.200.' | sort || true; }
nat_before=$(nat_rules)
echo "demo-smoke: make demo (log: $log)"
setsid make -C "$root" demo DEMO_DIR="$dir" >"$log" 2>&1 &
pid=$!
stop() { kill -INT -- "-$pid" 2>/dev/null || true; for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 1; done; kill -KILL -- "-$pid" 2>/dev/null || true; }
trap 'stop; tail -n 60 "$log"' ERR

answered=""
for _ in $(seq 1 240); do
  if out=$(curl -fsS -m 2 -H 'Host: hello.apps.localhost' http://127.0.0.1:8080/ 2>/dev/null) && [[ $out == *"from hello instance"* ]]; then
    answered=$out; break
  fi
  kill -0 "$pid" 2>/dev/null || { echo "demo-smoke: make demo exited"; stop; tail -n 60 "$log"; exit 1; }
  sleep 1
done
[ -n "$answered" ] || { echo "demo-smoke: hello never answered"; stop; tail -n 60 "$log"; exit 1; }
echo "demo-smoke: $answered"
# Every example app answers through the router (built from source by its buildpack).
for app in go-hello node-hello python-hello static-site java-hello; do
  ok=""
  for _ in $(seq 1 240); do
    if out=$(curl -fsS -m 2 -H "Host: $app.apps.localhost" http://127.0.0.1:8080/ 2>/dev/null) && [[ $out == *"from"* ]]; then
      ok=$out; break
    fi
    sleep 1
  done
  [ -n "$ok" ] || { echo "demo-smoke: $app never answered"; "$root/bin/driftless" app "$app" || true; stop; tail -n 60 "$log"; exit 1; }
  echo "demo-smoke: $app: $(echo "$ok" | head -n 1)"
done
# The notes example uses PostgreSQL from the built-in broker, bound from its services.yml.
note="demo-smoke $RANDOM"
ok=""
for _ in $(seq 1 240); do
  if curl -fsS -m 5 -H 'Host: notes.apps.localhost' -d "$note" http://127.0.0.1:8080/notes >/dev/null 2>&1 &&
     curl -fsS -m 5 -H 'Host: notes.apps.localhost' http://127.0.0.1:8080/notes 2>/dev/null | grep -qF "$note"; then
    ok=1; break
  fi
  sleep 1
done
[ -n "$ok" ] || { echo "demo-smoke: notes never stored a note"; "$root/bin/driftless" app notes || true; "$root/bin/driftless" services || true; stop; tail -n 60 "$log"; exit 1; }
echo "demo-smoke: notes stored and read back a note in PostgreSQL"
"$root/bin/driftless" services
"$root/bin/driftless" apps

repo=$dir/apps-repo
git -C "$repo" -c user.name=ci -c user.email=ci@driftless.invalid rm -rq apps
git -C "$repo" -c user.name=ci -c user.email=ci@driftless.invalid commit -qm "remove the apps"
"$root/bin/driftless" sync >/dev/null
for _ in $(seq 1 60); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -m 2 -H 'Host: hello.apps.localhost' http://127.0.0.1:8080/ || true)
  [ "$code" = 404 ] && break
  sleep 1
done
[ "$code" = 404 ] || { echo "demo-smoke: route still answers $code after removal"; stop; exit 1; }
# Every container gone before the platform stops: stopping leaves running
# apps running (by design), and a container left behind keeps its host
# port mapping, which would shadow the next demo's instances.
sock=$dir/platform/containerd/containerd.sock
left=""
for _ in $(seq 1 60); do
  left=$(ctr -a "$sock" -n driftless containers ls -q 2>/dev/null || true)
  [ -z "$left" ] && break
  sleep 1
done
[ -z "$left" ] || { echo "demo-smoke: containers left after removal: $left"; stop; exit 1; }
stop
trap - ERR
# Nothing of the demo left on the host: processes (shims, Consul,
# containerd), network attachments, NAT rules of its instances.
procs=""
for _ in $(seq 1 10); do
  procs=$(pgrep -a -f "$dir/" || true)
  [ -z "$procs" ] && break
  sleep 1
done
[ -z "$procs" ] || { echo "demo-smoke: processes left after the platform stopped:"; echo "$procs"; exit 1; }
records=$(ls "$dir"/platform/agent/network/attachments/*.json 2>/dev/null || true)
[ -z "$records" ] || { echo "demo-smoke: network attachments left: $records"; exit 1; }
new_rules=$(comm -13 <(echo "$nat_before") <(nat_rules))
[ -z "$new_rules" ] || { echo "demo-smoke: NAT rules left after the platform stopped:"; echo "$new_rules"; exit 1; }
echo "demo-smoke: ok"
