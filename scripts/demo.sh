#!/usr/bin/env bash
# Seeds a git repository of apps from examples/ (once) and runs the whole
# platform on this host with it: `make demo`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
demo=${1:-$root/.demo}
repo=$demo/apps-repo
mkdir -p "$demo"
chmod 755 "$demo" # dev's PostgreSQL runs as its own user and keeps its cluster under it

git_() { git -C "$repo" -c user.name=driftless-demo -c user.email=demo@driftless.invalid "$@"; }

if [ ! -d "$repo/.git" ]; then
  mkdir -p "$repo"
  git -C "$repo" init -q -b main
  cp -r "$root/examples/apps" "$repo/apps"
  git_ add -A
  git_ commit -q -m "examples from driftless"
  echo "demo: seeded $repo from examples/"
else
  # Keep the demo's hello binary current with the example's source.
  if ! cmp -s "$root/examples/apps/hello/hello" "$repo/apps/hello/hello"; then
    cp "$root/examples/apps/hello/hello" "$repo/apps/hello/hello"
    git_ add apps/hello/hello
    git_ commit -q -m "rebuild hello" || true
  fi
  # The Java example (added after some demos were seeded), its JAR current.
  jar=examples/apps/java-hello/target/app.jar
  if [ -f "$root/$jar" ] && ! cmp -s "$root/$jar" "$repo/apps/${jar#examples/apps/}"; then
    mkdir -p "$repo/apps/java-hello"
    cp -r "$root/examples/apps/java-hello/." "$repo/apps/java-hello/"
    git_ add apps/java-hello
    git_ commit -q -m "java-hello: the example's JAR" || true
  fi
fi

cat <<MSG

  The demo's app repository is $repo
  Once the platform is up (a few seconds):

    curl -H 'Host: hello.apps.localhost' http://127.0.0.1:8080/
    bin/driftless apps
    cd $repo && sed -i 's/instances: 2/instances: 3/' apps/hello/manifest.yml && git commit -qam scale
    bin/driftless apps            # hello 3/3 within seconds
    bin/driftless logs clock      # a worker's output
    curl -H 'Host: notes.apps.localhost' -d 'a note' http://127.0.0.1:8080/notes   # PostgreSQL, bound from services.yml
    bin/driftless services        # the service instances and what binds them
    https://127.0.0.1:7070/ui/    # the web dashboard (dev's CA; sign in with the admin token dev prints)

  Stop with Ctrl-C: the apps keep running (the next \`make demo\` adopts them); then
    bin/driftless dev --down --data $demo/platform
  stops them and removes their containers, network attachments, NAT and filter rules
  and bridge (the app repository and the platform's data stay).

MSG
exec "$root/bin/driftless" dev --data "$demo/platform" --repo "$repo" --postgres
